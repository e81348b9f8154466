"""What the phases do to a model built with a frozen base (``inception_v3``, ``frozen_base=True``).

The model itself comes from the registered builder (``cnnkeras.architectures.inception``);
here it is only taken apart: its nested base found, frozen and partly unfrozen, its
pooled features and its head used alone.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from cnnkeras.architectures.inception import BASE

HEAD_LAYERS = ("head_dropout", "predictions")


def base_of(model: keras.Model) -> keras.Model:
    """The nested base; a model without one (no ``frozen_base``) raises ``ValueError``."""
    names = [layer.name for layer in model.layers]
    if BASE not in names or not isinstance(model.get_layer(BASE), keras.Model):
        raise ValueError(
            f"the transfer recipe needs a model with a nested, frozen base named {BASE!r}: "
            f"model.architecture=inception_v3 with model.options.frozen_base=True. "
            f"Received: a model {model.name!r} without one")
    return model.get_layer(BASE)


def block_names(base: keras.Model) -> list:
    return [layer.name for layer in base.layers if layer.name.startswith("mixed")]


def check_layer(base: keras.Model, from_layer: str) -> int:
    """The index of ``from_layer`` in the base; unknown names raise listing the blocks."""
    names = [layer.name for layer in base.layers]
    if from_layer not in names:
        raise ValueError(
            f"transfer.fine_tune_from={from_layer!r} is not a layer of the base. Valid block "
            f"names: {', '.join(block_names(base))} (or any layer name of the base).")
    return names.index(from_layer)


def freeze_base(base: keras.Model) -> None:
    """Phase 1: nothing in the base trains."""
    base.trainable = False


def unfreeze_top(base: keras.Model, from_layer: str) -> list:
    """Phase 2: layers from ``from_layer`` on train, except batch normalisation.

    ``mixedN`` names the output of block N, so ``mixed7`` trains blocks mixed8 to
    mixed10. Returns the names of the layers that now hold trainable weights.
    """
    start = check_layer(base, from_layer)
    base.trainable = True
    for index, layer in enumerate(base.layers):
        frozen = index < start or isinstance(layer, layers.BatchNormalization)
        layer.trainable = not frozen
    return [layer.name for layer in base.layers[start:]
            if layer.trainable and layer.trainable_weights]


def feature_extractor(model: keras.Model) -> keras.Model:
    """Pixels -> pooled base features of ``model`` (augmentation is inactive in inference)."""
    return keras.Model(model.input, model.get_layer("avg_pool").output, name="bottlenecks")


def head_of(model: keras.Model) -> keras.Model:
    """The head alone over pooled features, sharing its layers (and weights) with ``model``."""
    x = inputs = keras.Input(shape=model.get_layer("avg_pool").output.shape[1:], name="features")
    for name in HEAD_LAYERS:
        if name in [layer.name for layer in model.layers]:
            x = model.get_layer(name)(x)
    return keras.Model(inputs, x, name="head")


def forward(model: keras.Model, *, eager: bool):
    """``images -> model(images, training=False)``, traced once unless ``eager``.

    A plain call, not ``predict_on_batch``: under a MirroredStrategy that hands the batch
    to every replica and returns each prediction once per replica.
    """
    def call(images):
        return model(images, training=False)

    return call if eager else tf.function(call, reduce_retracing=True)


def trainable_count(model: keras.Model) -> int:
    return int(sum(int(tf.size(w)) for w in model.trainable_weights))
