"""Inception v3 (Szegedy et al., 2015): ``keras.applications.InceptionV3`` behind ``build``.

``weights``:

- ``None`` (default): random initialisation;
- a path to a weights file (``.weights.h5``, e.g. saved by ``model.save_weights``
  from a model built with the same input channels and ``num_classes``): loaded
  after building; a path that does not exist raises ``ValueError``;
- ``"imagenet"``: Keras' ImageNet weights (downloaded on first use). With
  ``num_classes=1000`` the whole ImageNet model; with any other number the
  ImageNet convolutional base (``include_top=False``) under a new global average
  pool and a fresh ``predictions`` layer of ``num_classes``, i.e. transfer
  learning. ImageNet weights need 3 input channels.

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
from cnnkeras.registry import ARCHITECTURES

MIN_SIZE = 75
TOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"  # Keras' ImageNet weights files
NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


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


def check_weights(weights, input_shape) -> Optional[Path]:
    """Validate ``weights``; return the file to load afterwards, if any."""
    if weights is None:
        return None
    if weights == "imagenet":
        if input_shape[-1] != 3:
            raise ValueError(f"weights='imagenet' needs 3 input channels. "
                             f"Received: input_shape={tuple(input_shape)}")
        return None
    if not isinstance(weights, (str, Path)):
        raise ValueError(f"weights must be None, 'imagenet' or a path to a weights file. "
                         f"Received: weights={weights!r}")
    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist. Valid values: None, "
                         f"'imagenet' or the path of a saved weights file.")
    return path


@ARCHITECTURES.register("inception_v3", small_input_shape=(75, 75, 3))
def inception_v3(input_shape=(299, 299, 3), num_classes: int = 1000, *,
                 weights: Union[None, str, Path] = None) -> keras.Model:
    """Inception v3; see the module docstring for ``weights``."""
    height, width = input_shape[:2]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(f"inception_v3 needs an input of at least {MIN_SIZE}x{MIN_SIZE}. "
                         f"Received: input_shape={tuple(input_shape)}")
    weights_file = check_weights(weights, input_shape)
    imagenet_top = weights == "imagenet" and num_classes == 1000
    instead = (f"put {TOP_FILE if imagenet_top else NOTOP_FILE} in ~/.keras/models, or pass "
               "weights=PATH to a weights file saved from this model")
    base_kwargs = dict(include_top=False, input_shape=tuple(input_shape))
    base = (fetch_imagenet(instead=instead, **base_kwargs)
            if weights == "imagenet" and not imagenet_top
            else keras.applications.InceptionV3(weights=None, **base_kwargs))
    # Keras' own top computes in the global policy; under mixed precision the
    # softmax must stay float32, so the head is built here, as Keras builds it.
    x = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions",
                           dtype="float32")(x)
    model = keras.Model(base.input, outputs, name="inception_v3")
    if imagenet_top:
        model.set_weights(fetch_imagenet(instead=instead,
                                         input_shape=tuple(input_shape)).get_weights())
    if weights_file is not None:
        model.load_weights(weights_file)
    return model
