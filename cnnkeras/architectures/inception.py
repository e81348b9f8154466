"""Inception v3 (Szegedy et al., 2015): ``keras.applications.InceptionV3`` behind ``build``.

``weights``:

- ``None`` or ``"none"`` (default): random initialisation;
- a path to a weights file: loaded after building; a path that does not exist, or a
  file that does not fit, raises ``ValueError``. Without ``frozen_base`` the file is
  the whole model's (e.g. saved by ``model.save_weights`` from a model built with
  the same input channels and ``num_classes``); with it, the base's (saved without
  the top, e.g. Keras' ``NOTOP_FILE``);
- ``"imagenet"``: Keras' ImageNet weights (downloaded on first use). With
  ``num_classes=1000`` and no ``frozen_base`` the whole ImageNet model; with any
  other number the ImageNet convolutional base (``include_top=False``) under a new
  global average pool and a fresh ``predictions`` layer of ``num_classes``, i.e.
  transfer learning. ImageNet weights need 3 input channels.

Both forms take pixels in [0, 255] (``cnnkeras.architectures.blocks``): the input
``image`` is followed by ``pixels``, ``Rescaling(1/255)``, and the plain form's
``keras.applications`` layers are built on its output.

``frozen_base=True`` builds the transfer-learning form of the Keras guide, reloadable
in safe mode::

    image -> pixels: Rescaling(1/255)  # [0, 255] -> [0, 1]
          -> augmentation (flip, rotation, zoom, contrast; training only, augment=True)
          -> preprocess: Rescaling(2, offset=-1)  # inception_v3.preprocess_input on [0, 1]
          -> base "inception_v3" (include_top=False, frozen), called with training=False
          -> avg_pool -> head_dropout (dropout > 0) -> predictions (softmax, float32)

Calling the base with ``training=False`` keeps its batch normalisation in inference
mode even when layers of the base are unfrozen later (``cnnkeras.transfer``).

23,851,784 parameters at 299x299x3 for 1000 classes. The smallest input is
75x75; layer names are those ``keras.applications`` gives (``conv2d_12``,
``mixed5``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import keras
from keras import layers

from cnnkeras import network
from cnnkeras.architectures.blocks import image_input
from cnnkeras.registry import ARCHITECTURES

MIN_SIZE = 75
TOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"  # Keras' ImageNet weights files
NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
BASE = "inception_v3"  # the nested base's name in the frozen_base form
WEIGHTS_HELP = "None, 'imagenet' or a path to a weights file ('none' counts as None)"


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def fetch_imagenet(*, instead: str, **kwargs) -> keras.Model:
    """``keras.applications.InceptionV3(weights="imagenet", **kwargs)``, downloading the weights.

    A failed download raises one ``ValueError`` saying whether the network was the
    cause (then ``instead``: what to use without internet) or what else was.
    """
    try:
        return keras.applications.InceptionV3(weights="imagenet", **kwargs)
    except ValueError:
        raise  # an input shape the weights do not fit, or a corrupted download: already clear
    except Exception as err:  # get_file raises a bare Exception over the URLError
        raise network.download_error("could not fetch the ImageNet weights for Inception v3",
                                     err, instead=instead) from err


def is_none(weights) -> bool:
    """``None`` or the text ``none`` (what ``--set model.options.weights=none`` gives)."""
    return weights is None or (isinstance(weights, str) and weights.lower() == "none")


def check_weights(weights, input_shape) -> Optional[Path]:
    """Validate ``weights``; return the file to load afterwards, if any."""
    if is_none(weights):
        return None
    if weights == "imagenet":
        if input_shape[-1] != 3:
            raise ValueError(f"weights='imagenet' needs 3 input channels. "
                             f"Received: input_shape={tuple(input_shape)}")
        return None
    if not isinstance(weights, (str, Path)):
        raise ValueError(f"weights must be {WEIGHTS_HELP}. Received: weights={weights!r}")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist. Valid values: "
                         f"{WEIGHTS_HELP}.")
    return path


def load_weights_file(model: keras.Model, path: Path, *, what: str) -> None:
    """``model.load_weights(path)``; a file that does not fit raises one ``ValueError``."""
    try:
        model.load_weights(path)
    except Exception as err:  # wrong format, wrong architecture, truncated file
        raise ValueError(f"could not load {what} from {str(path)!r}: {first_line(err)}. "
                         f"Valid: {WEIGHTS_HELP}.") from None


def augmentation() -> keras.Sequential:
    """Random flip, rotation, zoom and contrast; active only when training."""
    return keras.Sequential([
        layers.RandomFlip("horizontal", name="flip"),
        layers.RandomRotation(0.1, name="rotation"),
        layers.RandomZoom(0.1, name="zoom"),
        layers.RandomContrast(0.1, name="contrast"),
    ], name="augmentation")


def head(features, num_classes: int, *, dropout: float):
    """Dropout (if any) and a softmax classifier, float32 under mixed precision.

    Keras' own top computes in the global policy; under mixed precision the softmax
    must stay float32, so the head is built here, as Keras builds it.
    """
    x = layers.Dropout(dropout, name="head_dropout")(features) if dropout else features
    return layers.Dense(num_classes, activation="softmax", dtype="float32",
                        name="predictions")(x)


def frozen_base_model(input_shape, num_classes: int, *, weights, weights_file, dropout: float,
                      augment: bool) -> keras.Model:
    """The transfer-learning form (module docstring): a frozen base called in inference mode."""
    kwargs = dict(include_top=False, input_shape=tuple(input_shape), name=BASE)
    if weights == "imagenet":
        base = fetch_imagenet(instead=f"put {NOTOP_FILE} in ~/.keras/models, or pass "
                              f"weights=PATH (cnnkeras transfer --weights PATH) to a downloaded "
                              f"{NOTOP_FILE}, or weights=none", **kwargs)
    else:
        base = keras.applications.InceptionV3(weights=None, **kwargs)
    if weights_file is not None:
        load_weights_file(base, weights_file, what="the Inception v3 base weights (no top)")
    base.trainable = False
    inputs, x = image_input(input_shape)
    x = augmentation()(x) if augment else x
    x = layers.Rescaling(2.0, offset=-1.0, name="preprocess")(x)
    x = base(x, training=False)
    features = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, head(features, num_classes, dropout=dropout),
                       name="inception_v3_transfer")


def check_options(input_shape, *, dropout: float, augment: bool, frozen_base: bool) -> None:
    for key, value in (("frozen_base", frozen_base), ("augment", augment)):
        if not isinstance(value, bool):  # --set model.options.augment=false gives the text
            raise ValueError(f"{key} must be True or False. Received: {key}={value!r}")
    height, width = input_shape[:2]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(f"inception_v3 needs an input of at least {MIN_SIZE}x{MIN_SIZE}. "
                         f"Received: input_shape={tuple(input_shape)}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
            not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1). Received: dropout={dropout!r}")
    if augment and not frozen_base:
        raise ValueError("augment=True needs frozen_base=True (the augmentation runs in front "
                         "of the nested base). Received: frozen_base=False")


@ARCHITECTURES.register("inception_v3", small_input_shape=(75, 75, 3))
def inception_v3(input_shape=(299, 299, 3), num_classes: int = 1000, *,
                 weights: Union[None, str, Path] = None, frozen_base: bool = False,
                 dropout: float = 0.0, augment: bool = False) -> keras.Model:
    """Inception v3; see the module docstring for ``weights`` and ``frozen_base``."""
    check_options(input_shape, dropout=dropout, augment=augment, frozen_base=frozen_base)
    weights_file = check_weights(weights, input_shape)
    if frozen_base:
        return frozen_base_model(input_shape, num_classes, weights=weights,
                                 weights_file=weights_file, dropout=dropout, augment=augment)
    imagenet_top = weights == "imagenet" and num_classes == 1000
    instead = (f"put {TOP_FILE if imagenet_top else NOTOP_FILE} in ~/.keras/models, or pass "
               "weights=PATH to a weights file saved from this model")
    inputs, pixels = image_input(input_shape)  # Keras' layers, built on the scaled pixels
    scaled = layers.Rescaling(2.0, offset=-1.0, name="preprocess")(pixels)  # [-1, 1], as
    # ImageNet's weights were trained (inception_v3.preprocess_input)
    base_kwargs = dict(include_top=False, input_shape=tuple(input_shape), input_tensor=scaled)
    base = (fetch_imagenet(instead=instead, **base_kwargs)
            if weights == "imagenet" and not imagenet_top
            else keras.applications.InceptionV3(weights=None, **base_kwargs))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    model = keras.Model(inputs, head(x, num_classes, dropout=dropout), name="inception_v3")
    if imagenet_top:
        model.set_weights(fetch_imagenet(instead=instead,
                                         input_shape=tuple(input_shape)).get_weights())
    if weights_file is not None:
        load_weights_file(model, weights_file, what="Inception v3 weights")
    return model
