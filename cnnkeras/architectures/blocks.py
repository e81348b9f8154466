"""What every family shares: the image input and its pixel contract.

Every model cnnkeras builds takes pixel values in [0, 255], as users hold images
and as ``cnnkeras.data`` feeds them (float32, cast, not scaled). The scaling to
[0, 1] is the model's first layer after its input, ``pixels``, a Keras
preprocessing layer (``Rescaling(1/255)``: no weights, reloads in safe mode), so a
saved model carries it: whatever a family does next (LeNet-5's ``normalize``,
Inception's ``preprocess`` to [-1, 1]) is written for [0, 1] and stays so.

``pixels`` computes in float32 under any dtype policy: the scaled image is then
the one the pipeline's float32 division gave before it moved into the model, and
the next layer casts it to the policy's compute dtype as before.
"""

from __future__ import annotations

import keras
from keras import layers

PIXELS = "pixels"  # the scaling layer's name in every model
PIXEL_RANGE = (0, 255)  # what every model cnnkeras builds takes


def image_input(input_shape, *, name: str = "image"):
    """``(inputs, x)``: a ``keras.Input`` named ``name`` taking pixels in [0, 255], and ``x``
    the same pixels scaled to [0, 1] by the ``pixels`` layer, for the model's layers."""
    inputs = keras.Input(shape=tuple(input_shape), name=name)
    return inputs, layers.Rescaling(1 / 255, name=PIXELS, dtype="float32")(inputs)


# BN's moving statistics decay at 0.9 per step where Keras' default is 0.99: they average the
# last ~10 steps rather than ~100, so a run of a few hundred steps on a small dataset (a
# tuning trial, a lecture exercise) validates with the statistics of its current weights,
# not of weights epochs behind.
BN_MOMENTUM = 0.9
