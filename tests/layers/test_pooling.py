"""The four pooling kinds against NumPy, and their save/load round trip."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from cnnkeras.layers import POOLING_KINDS, DepthwiseMaxPooling2D, L2Pooling2D, pooling_layer


def windows(x, size, stride, padding):
    """(N, out_h, out_w, C, size, size) windows of NHWC ``x``, zero-padded as TF pads 'same'."""
    if padding == "same":
        pads = []
        for axis in (1, 2):
            out = math.ceil(x.shape[axis] / stride)
            total = max((out - 1) * stride + size - x.shape[axis], 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    view = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return view[:, ::stride, ::stride]


def reference(kind, x, size, stride, padding):
    if kind == "depthwise":
        n, h, w, c = x.shape
        return x.reshape(n, h, w, c // size, size).max(axis=-1)
    view = windows(x, size, stride, padding)
    if kind == "max":
        return view.max(axis=(-2, -1))
    if kind == "average":
        return view.mean(axis=(-2, -1))
    return np.sqrt((view ** 2).sum(axis=(-2, -1)))


@pytest.mark.parametrize("kind", POOLING_KINDS)
@pytest.mark.parametrize("size,stride,padding", [(2, 2, "valid"), (3, 2, "valid"), (3, 1, "valid")])
def test_pooling_matches_numpy(kind, size, stride, padding):
    x = np.random.default_rng(0).normal(size=(2, 7, 9, 6)).astype("float32")
    layer = pooling_layer(kind, size, stride, padding)
    expected = reference(kind, x, size, stride, padding)
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_l2_pooling_same_padding_counts_zeros():
    x = np.random.default_rng(1).normal(size=(1, 5, 5, 2)).astype("float32")
    got = keras.ops.convert_to_numpy(L2Pooling2D(3, 2, "same")(x))
    np.testing.assert_allclose(got, reference("l2", x, 3, 2, "same"), rtol=1e-5)
    assert got.shape == (1, 3, 3, 2)


def test_depthwise_pooling_equals_tf_nn_max_pool_across_channels():
    import tensorflow as tf

    x = np.random.default_rng(2).normal(size=(2, 4, 4, 9)).astype("float32")
    expected = tf.nn.max_pool(x, ksize=(1, 1, 1, 3), strides=(1, 1, 1, 3), padding="VALID")
    got = DepthwiseMaxPooling2D(3)(x)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_l2_pooling_gradient_is_finite_on_zeros():
    import tensorflow as tf

    x = tf.zeros((1, 4, 4, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(L2Pooling2D(2)(x))
    assert np.isfinite(tape.gradient(y, x).numpy()).all()


@pytest.mark.parametrize("kind", ["l2", "depthwise"])
def test_pooling_model_saves_and_loads(kind, tmp_path):
    inputs = keras.Input((6, 6, 6))
    model = keras.Model(inputs, pooling_layer(kind, 3 if kind == "depthwise" else 2,
                                              name="pool")(inputs))
    x = np.random.default_rng(3).normal(size=(1, 6, 6, 6)).astype("float32")
    model.save(tmp_path / "pool.keras")
    loaded = keras.models.load_model(tmp_path / "pool.keras")
    assert type(loaded.get_layer("pool")) is type(model.get_layer("pool"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_pooling_arguments_raise():
    with pytest.raises(ValueError, match="Valid kinds: max, average, l2, depthwise"):
        pooling_layer("median")
    with pytest.raises(ValueError, match="multiple of pool_size=4"):
        DepthwiseMaxPooling2D(4)(np.zeros((1, 2, 2, 6), "float32"))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        L2Pooling2D(2, padding="full")
