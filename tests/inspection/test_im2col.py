"""Convolution as one matrix multiply, against ``tf.nn.conv2d``."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cnnkeras.inspection.im2col import conv2d_im2col, im2col


def test_alexnet_conv1_patch_matrix_is_363_by_3025():
    image = np.random.default_rng(0).random((227, 227, 3)).astype("float32")
    patches, (out_h, out_w) = im2col(image, 11, 4)
    assert patches.shape == (363, 3025) and (out_h, out_w) == (55, 55)
    np.testing.assert_array_equal(patches[:, 1], image[0:11, 4:15].reshape(-1))


@pytest.mark.parametrize("strides,padding", [(1, "valid"), (2, "same"), (3, "SAME"), (2, 1)])
def test_conv2d_im2col_equals_tf_nn_conv2d(strides, padding):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 8, 3)).astype("float32")
    kernel = rng.normal(size=(3, 3, 3, 5)).astype("float32")
    if isinstance(padding, int):
        expected = tf.nn.conv2d(x, kernel, strides, [[0, 0], [padding] * 2, [padding] * 2, [0, 0]])
    else:
        expected = tf.nn.conv2d(x, kernel, strides, padding.upper())
    np.testing.assert_allclose(conv2d_im2col(x, kernel, strides, padding), expected.numpy(),
                               rtol=1e-4, atol=1e-4)
