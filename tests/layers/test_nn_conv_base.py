"""What the tf.nn convolution layers share (``cnnkeras.layers.nn_conv_base``): the explicit
kernel dilation, the argument and geometry checks, and serialization."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnkeras.geometry import GeometryError
from cnnkeras.layers import (
    NNAtrousConv2D,
    NNConv1D,
    NNConv2DTranspose,
    NNConv3D,
    NNDepthwiseConv2D,
    NNSeparableConv2D,
)
from cnnkeras.layers.nn_conv_base import dilate_kernel


def test_dilate_kernel_inserts_rate_minus_one_zeros_between_taps():
    taps = tf.constant([1.0, 2.0, 3.0])
    assert dilate_kernel(taps, (3,)).numpy().tolist() == [1, 0, 0, 2, 0, 0, 3]
    assert dilate_kernel(taps, (2,)).numpy().tolist() == [1, 0, 2, 0, 3]
    assert dilate_kernel(taps, (1,)).numpy().tolist() == [1, 2, 3]
    grid = dilate_kernel(tf.reshape(tf.range(1.0, 5.0), (2, 2, 1, 1)), (2, 3))
    assert grid.shape == (3, 4, 1, 1)
    assert grid[..., 0, 0].numpy().tolist() == [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]]


# --- Argument and geometry errors --------------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda: NNConv1D(4, 3, strides=2, dilation_rate=2), "strides=2"),
    (lambda: NNConv3D(0, 3), "filters=0"),
    (lambda: NNConv3D(4, (3, 3)), "kernel_size=(3, 3)"),
    (lambda: NNConv1D(4, -1), "kernel_size=-1"),
    (lambda: NNAtrousConv2D(4, 3, rate=0), "rate=0"),
    (lambda: NNAtrousConv2D(4, 3, rate=2, strides=2), "strides=2"),
    (lambda: NNConv2DTranspose(4, 3, padding="causal"), "padding='causal'"),
    (lambda: NNDepthwiseConv2D(3, strides=(1, 2)), "strides=(1, 2)"),
    (lambda: NNDepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier=0"),
    (lambda: NNSeparableConv2D(4, 3, strides=2, dilation_rate=2), "dilation_rate=2"),
])
def test_invalid_arguments_raise_value_error_naming_the_value(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.parametrize("make,shape,wide", [
    (lambda: NNConv1D(2, 5), (1, 4, 1), 4),
    (lambda: NNConv3D(2, 3), (1, 2, 5, 5, 1), 2),
    (lambda: NNAtrousConv2D(2, 3, rate=3), (1, 9, 6, 1), 6),  # the dilated kernel is 7 wide
    (lambda: NNDepthwiseConv2D(4), (1, 3, 3, 1), 3),
    (lambda: NNSeparableConv2D(2, 3, dilation_rate=2), (1, 4, 4, 1), 4),
])
def test_kernel_larger_than_a_valid_input_raises_with_the_output_size(make, shape, wide):
    with pytest.raises(GeometryError, match=rf"does not fit a {wide}-wide input .*output would be"):
        make()(np.zeros(shape, "float32"))


# --- Serialization -------------------------------------------------------------------------------

LAYERS = [
    (lambda: NNConv1D(3, 3, padding="causal", dilation_rate=2, activation="relu"), (8, 2)),
    (lambda: NNConv3D(3, (2, 3, 3), strides=(1, 2, 2), padding="same"), (3, 6, 6, 2)),
    (lambda: NNAtrousConv2D(3, 3, rate=2, padding="same", use_bias=False), (7, 7, 2)),
    (lambda: NNConv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid"), (4, 4, 2)),
    (lambda: NNDepthwiseConv2D(3, depth_multiplier=2, kernel_initializer="he_normal"), (6, 6, 2)),
    (lambda: NNSeparableConv2D(4, 3, strides=2, depth_multiplier=2), (7, 7, 2)),
]


@pytest.mark.parametrize("make,shape", LAYERS)
def test_get_config_round_trips(make, shape):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)) \
        .get_config() == layer.get_config()


@pytest.mark.parametrize("make,shape", LAYERS)
def test_saved_model_reloads_in_safe_mode_with_identical_outputs(make, shape, tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, make()(inputs))
    x = np.random.default_rng(8).standard_normal((2, *shape)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True is the default
    assert type(loaded.layers[-1]) is type(model.layers[-1])
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
