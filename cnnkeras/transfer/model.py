"""The transfer-learning classifier: ImageNet Inception v3 base under a new head.

The model takes RGB pixels in [0, 255] and holds everything else itself, as
serializable layers (it reloads with ``keras.saving.load_model`` in safe mode):

    input -> augmentation (flip, rotation, zoom, contrast; training only)
          -> Rescaling(1/127.5, offset=-1)   # what inception_v3.preprocess_input computes
          -> base "inception_v3" (include_top=False), called with training=False
          -> avg_pool -> head_dropout -> predictions (softmax)

Calling the base with ``training=False`` keeps its batch normalisation in
inference mode in both phases, as the Keras transfer-learning guide does; the
fine-tuning phase also keeps the batch-normalisation layers frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import keras
from keras import layers

from cnnkeras.architectures.inception import NOTOP_FILE, fetch_imagenet

MIN_IMAGE_SIZE = 75  # the smallest input keras.applications.InceptionV3 accepts
FEATURES = 2048  # channels of the base's last block, the pooled bottleneck width
WEIGHTS_HELP = ("'imagenet' (downloaded where there is internet), 'none' (random "
                "initialisation) or the path of a weights file for the Inception v3 base")


def check_image_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or \
            image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size must be an integer of at least {MIN_IMAGE_SIZE}, the smallest input "
            f"Inception v3 accepts. Received: {image_size!r}")
    return image_size


def resolve_weights(weights: Union[None, str, Path]) -> Union[None, str]:
    """``None``, ``"imagenet"`` or an existing file's path; anything else raises ValueError."""
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights) == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist. Valid: {WEIGHTS_HELP}.")
    return str(path)


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def load_base(weights: Union[None, str, Path], image_size: int) -> keras.Model:
    """``InceptionV3(include_top=False)`` at ``image_size``, weights resolved and loaded."""
    size = check_image_size(image_size)
    weights = resolve_weights(weights)
    kwargs = dict(include_top=False, input_shape=(size, size, 3), name="inception_v3")
    if weights == "imagenet":
        return fetch_imagenet(instead=f"pass --weights PATH to a downloaded {NOTOP_FILE}, "
                              "or --weights none", **kwargs)
    base = keras.applications.InceptionV3(weights=None, **kwargs)
    if weights is not None:
        try:
            base.load_weights(weights)
        except Exception as err:  # wrong format, wrong architecture, truncated file
            raise ValueError(
                f"could not load the Inception v3 base weights from {weights!r}: "
                f"{first_line(err)}. "
                f"Valid: {WEIGHTS_HELP} (saved without the top).") from None
    return base


def augmentation(seed: Optional[int] = None) -> keras.Sequential:
    """Random flip, rotation, zoom and contrast; active only when training."""
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed, name="flip"),
        layers.RandomRotation(0.1, seed=seed, name="rotation"),
        layers.RandomZoom(0.1, seed=seed, name="zoom"),
        layers.RandomContrast(0.1, seed=seed, name="contrast"),
    ], name="augmentation")


def head(features, num_classes: int, *, dropout: float):
    """Dropout and a softmax classifier over pooled features (float32 under mixed precision)."""
    x = layers.Dropout(dropout, name="head_dropout")(features)
    return layers.Dense(num_classes, activation="softmax", dtype="float32",
                        name="predictions")(x)


def build_classifier(base: keras.Model, num_classes: int, *, dropout: float = 0.2,
                     augment: bool = True, seed: Optional[int] = None) -> keras.Model:
    """Pixels in [0, 255] -> class probabilities, around a base called in inference mode."""
    inputs = keras.Input(shape=base.input_shape[1:], name="image")
    x = augmentation(seed)(inputs) if augment else inputs
    x = layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(x)
    x = base(x, training=False)
    features = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, head(features, num_classes, dropout=dropout),
                       name="inception_v3_transfer")


def build_head(num_classes: int, *, dropout: float = 0.2) -> keras.Model:
    """The classifier's head alone, over cached pooled features (the bottleneck recipe)."""
    inputs = keras.Input(shape=(FEATURES,), name="bottleneck")
    return keras.Model(inputs, head(inputs, num_classes, dropout=dropout), name="head")


def feature_extractor(model: keras.Model) -> keras.Model:
    """Pixels -> pooled base features of ``model`` (augmentation is inactive in predict)."""
    return keras.Model(model.inputs, model.get_layer("avg_pool").output, name="bottlenecks")


def block_names(base: keras.Model) -> list:
    return [layer.name for layer in base.layers if layer.name.startswith("mixed")]


def freeze_base(base: keras.Model) -> None:
    """Phase 1: nothing in the base trains."""
    base.trainable = False


def check_layer(base: keras.Model, from_layer: str) -> int:
    """The index of ``from_layer`` in the base; unknown names raise listing the blocks."""
    names = [layer.name for layer in base.layers]
    if from_layer not in names:
        raise ValueError(
            f"fine_tune_from={from_layer!r} is not a layer of the Inception v3 base. Valid "
            f"block names: {', '.join(block_names(base))} (or any layer name of the base).")
    return names.index(from_layer)


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
