"""LeNet-5 as LeCun et al. (1998) built it, and the same geometry with today's parts.

``lenet5`` (32x32x1, the paper's size; a 28x28 MNIST digit is zero-padded by 2
on each side to 32x32 by the model's ``pad`` layer)::

    C1 conv 6@5x5 -> 28x28x6       156 parameters
    S2 subsampling -> 14x14x6       12   (coefficient + bias per map)
    C3 conv 16@5x5, Table I -> 10x10x16   1,516  (maps see 3, 4 or 6 of S2's 6)
    S4 subsampling -> 5x5x16        32
    C5 conv 120@5x5 -> 1x1x120      48,120
    F6 dense 84                     10,164
    RBF output, 84 x classes fixed 7x12 bitmaps (non-trainable)

60,000 trainable parameters. Every layer up to F6 is squashed by
1.7159 tanh(2a/3). The RBF layer (``rbf``) outputs squared distances to the
class bitmaps, lower = more likely. So that the standard Keras loss pipeline
trains it, the model's output ``predictions`` is softmax(-distance): sparse
categorical cross-entropy on it is y_correct + log sum_i exp(-y_i), the paper's
MAP criterion (eq. 9) without its constant rubbish-class term exp(-j). Weights
start uniform in +-2.4/F_i (F_i the fan-in; C3's averaged over its maps).

The geometry needs 32x32 (smaller inputs are zero-padded up to it), so
``small_input_shape`` is the paper's size; larger inputs leave C5 with a spatial
map that is flattened before F6 (F6 then has more parameters than the paper's).

``lenet5_modern``: the same geometry with ReLU, max pooling, a full C3
(2,416 parameters) and a softmax output.
"""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.layers.lenet import (
    ConnectionTableConv2D,
    EuclideanRBF,
    ScaledTanh,
    Subsampling2D,
)
from cnnkeras.registry import ARCHITECTURES

PAPER_SIZE = 32

# Table I: the S2 maps each C3 map is connected to. Maps 0-5 see 3 neighbouring
# maps, 6-11 see 4 neighbouring maps, 12-14 see 4 non-neighbouring ones, 15 sees all 6.
C3_TABLE = (
    tuple(tuple(sorted((m + i) % 6 for i in range(3))) for m in range(6))
    + tuple(tuple(sorted((m + i) % 6 for i in range(4))) for m in range(6))
    + ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))
)


def lecun_uniform(fan_in: float, seed: int):
    """Uniform in +-2.4/F_i, the paper's initialisation."""
    limit = 2.4 / fan_in
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


def paper_input(input_shape, name: str):
    """The image, zero-padded up to 32x32 when smaller (28x28 MNIST -> 32x32)."""
    height, width, _ = input_shape
    if height < 10 or width < 10:
        raise ValueError(f"{name} needs an input of at least 10x10 (padded to 32x32). "
                         f"Received: input_shape={tuple(input_shape)}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    pad_h, pad_w = max(0, PAPER_SIZE - height), max(0, PAPER_SIZE - width)
    x = inputs
    if pad_h or pad_w:
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2),
                                  (pad_w // 2, pad_w - pad_w // 2)), name="pad")(x)
    return inputs, x


@ARCHITECTURES.register("lenet5", small_input_shape=(32, 32, 1))
def lenet5(input_shape=(32, 32, 1), num_classes: int = 10, *, seed: int = 0) -> keras.Model:
    """LeNet-5 as published; see the module docstring for the layers and the output."""
    inputs, x = paper_input(input_shape, "lenet5")
    channels = input_shape[-1]
    x = layers.Conv2D(6, 5, kernel_initializer=lecun_uniform(25 * channels, seed),
                      name="c1_conv")(x)
    x = ScaledTanh(name="c1_tanh")(x)
    x = Subsampling2D(2, name="s2_subsample")(x)
    x = ScaledTanh(name="s2_tanh")(x)
    connections = sum(len(inputs_) for inputs_ in C3_TABLE)
    x = ConnectionTableConv2D(
        C3_TABLE, 5, kernel_initializer=lecun_uniform(25 * connections / 16, seed + 1),
        name="c3_conv")(x)
    x = ScaledTanh(name="c3_tanh")(x)
    x = Subsampling2D(2, name="s4_subsample")(x)
    x = ScaledTanh(name="s4_tanh")(x)
    x = layers.Conv2D(120, 5, kernel_initializer=lecun_uniform(25 * 16, seed + 2),
                      name="c5_conv")(x)
    x = ScaledTanh(name="c5_tanh")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, kernel_initializer=lecun_uniform(x.shape[-1], seed + 3),
                     name="f6_dense")(x)
    x = ScaledTanh(name="f6_tanh")(x)
    distances = EuclideanRBF(num_classes, name="rbf", dtype="float32")(x)
    logits = layers.Rescaling(-1.0, name="negative_distance", dtype="float32")(distances)
    outputs = layers.Softmax(name="predictions", dtype="float32")(logits)
    return keras.Model(inputs, outputs, name="lenet5")


@ARCHITECTURES.register("lenet5_modern", small_input_shape=(32, 32, 1))
def lenet5_modern(input_shape=(32, 32, 1), num_classes: int = 10, *,
                  dropout: float = 0.0) -> keras.Model:
    """LeNet-5's geometry with ReLU, 2x2 max pooling, a full C3 and a softmax output."""
    inputs, x = paper_input(input_shape, "lenet5_modern")
    for name, filters, pool in (("c1", 6, "s2"), ("c3", 16, "s4")):
        x = layers.Conv2D(filters, 5, activation="relu", name=f"{name}_conv")(x)
        x = layers.MaxPooling2D(2, name=f"{pool}_pool")(x)
    x = layers.Conv2D(120, 5, activation="relu", name="c5_conv")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation="relu", name="f6_dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="f6_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name="lenet5_modern")
