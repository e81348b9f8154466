"""``fc_to_conv``: a dense head as convolutions, equal outputs, sliding over larger images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cnnkeras
from cnnkeras.inspection.fully_convolutional import fc_to_conv


@pytest.fixture(scope="module")
def lecture_pair():
    keras.utils.set_random_seed(0)
    model = cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10)
    return model, fc_to_conv(model)


def test_fc_to_conv_gives_identical_outputs_at_the_original_size(lecture_pair):
    model, convolutional = lecture_pair
    x = np.random.default_rng(2).random((3, 28, 28, 1)).astype("float32")
    assert isinstance(convolutional.get_layer("fc1"), keras.layers.Conv2D)
    assert convolutional.get_layer("fc1").kernel.shape == (5, 5, 50, 100)
    out = np.asarray(convolutional(x))
    assert out.shape == (3, 1, 1, 10)
    np.testing.assert_allclose(out[:, 0, 0], np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_fc_to_conv_slides_over_a_larger_image(lecture_pair):
    model, convolutional = lecture_pair
    big = np.random.default_rng(3).random((1, 56, 56, 1)).astype("float32")
    scores = np.asarray(convolutional(big))
    assert scores.shape == (1, 8, 8, 10)  # one class distribution per window, stride 4
    windows = np.stack([big[0, 4 * i:4 * i + 28, 4 * j:4 * j + 28] for i, j in [(0, 0), (2, 5)]])
    np.testing.assert_allclose(scores[0, [0, 2], [0, 5]], np.asarray(model(windows)),
                               rtol=1e-5, atol=1e-6)


def test_fc_to_conv_rejects_models_without_a_flattened_dense_head():
    model = cnnkeras.build("resnet18", input_shape=(32, 32, 3), num_classes=10)
    with pytest.raises(ValueError, match="breaks the chain"):
        fc_to_conv(model)
    inputs = keras.Input((8, 8, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="Flatten followed by Dense"):
        fc_to_conv(keras.Model(inputs, keras.layers.Dense(2)(pooled)))
