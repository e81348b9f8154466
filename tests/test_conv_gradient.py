"""Stride-1 convolutions switched to a forward-convolution input gradient learn the same."""

import keras
import numpy as np
import tensorflow as tf

from cnnkeras.training import compile_model
from cnnkeras.training.conv_gradient import onednn_enabled, use_forward_input_gradients


def four_convolutions() -> keras.Model:
    """Two switchable (3x3 same, 3x1 valid) and two not (2x2 same, stride 2)."""
    inputs = keras.Input((7, 6, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", name="same_3x3")(inputs)
    x = keras.layers.Conv2D(4, (3, 1), padding="valid", name="valid_3x1")(x)
    x = keras.layers.Conv2D(4, 2, padding="same", name="same_2x2")(x)
    x = keras.layers.Conv2D(3, 3, strides=2, name="strided")(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))


def gradients(model, images):
    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(model(images) ** 2)
    return tape.gradient(loss, [images, *model.trainable_variables])


def switched_layers(model) -> list[str]:
    return [layer.name for layer in model.layers if "convolution_op" in vars(layer)]


def test_switched_convolutions_give_the_same_gradients_for_input_and_weights():
    keras.utils.set_random_seed(0)
    plain, switched = four_convolutions(), four_convolutions()
    switched.set_weights(plain.get_weights())
    assert use_forward_input_gradients(switched, onednn=False) == 2
    assert switched_layers(switched) == ["same_3x3", "valid_3x1"]
    images = np.random.default_rng(0).normal(size=(4, 7, 6, 3)).astype("float32")
    np.testing.assert_allclose(switched(images), plain(images), rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(gradients(switched, images), gradients(plain, images),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_with_onednn_nothing_is_switched_and_compile_follows_this_process():
    model = four_convolutions()
    assert use_forward_input_gradients(model, onednn=True) == 0
    assert switched_layers(model) == []
    compile_model(model, optimizer="adam", learning_rate=1e-3)
    kept = onednn_enabled() or tf.config.list_logical_devices("GPU")
    expected = [] if kept else ["same_3x3", "valid_3x1"]
    assert switched_layers(model) == expected


def test_a_switched_model_saves_and_reloads_as_plain_conv2d(tmp_path):
    model = four_convolutions()
    use_forward_input_gradients(model, onednn=False)
    model.compile("adam", "mse")
    images = np.random.default_rng(1).normal(size=(8, 7, 6, 3)).astype("float32")
    model.fit(images, np.ones((8, 2)), epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert switched_layers(reloaded) == []
    assert type(reloaded.get_layer("same_3x3")) is keras.layers.Conv2D
    np.testing.assert_allclose(reloaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-6, atol=1e-6)

