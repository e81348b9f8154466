"""LeNet-5 as LeCun et al. (1998) built and trained it, and the same geometry with today's parts.

``lenet5`` (32x32x1, the paper's size; a 28x28 MNIST digit is zero-padded by 2
on each side to 32x32 by the model's ``pad`` layer)::

    pixels: [0, 255] -> [0, 1]      (every cnnkeras model's first layer)
    normalize: [0, 1] -> [-0.1, 1.175]
    C1 conv 6@5x5 -> 28x28x6       156 parameters
    S2 subsampling -> 14x14x6       12   (coefficient + bias per map)
    C3 conv 16@5x5, Table I -> 10x10x16   1,516  (maps see 3, 4 or 6 of S2's 6)
    S4 subsampling -> 5x5x16        32
    C5 conv 120@5x5 -> 1x1x120      48,120
    F6 dense 84                     10,164
    RBF output, 84 x classes fixed 7x12 bitmaps (non-trainable)

60,000 trainable parameters and 840 fixed ones. Every layer up to F6 is
squashed by 1.7159 tanh(2a/3). Weights start uniform in +-2.4/F_i (F_i the
fan-in; C3's averaged over its maps).

Input (section II.B): the model takes pixels in [0, 255] and scales them to
[0, 1] (layer ``pixels``, ``cnnkeras.architectures.blocks``); it pads with 0
(background) and then maps linearly background 0 -> -0.1 and ink 255 -> 1.175
(layer ``normalize``), so the mean input is roughly 0 and its variance roughly 1.

Output and loss (eq. 9): the RBF layer (``rbf``) outputs y_i = sum_j (x_j - w_ij)^2,
the squared distance to class i's bitmap, lower = more likely. The paper's loss is

    E = mean_p [ y_D(p) + log(exp(-j) + sum_i exp(-y_i(p))) ]

with D(p) the correct class and j a positive constant (the rubbish class). The
model's output ``predictions`` is softmax(-y), so accuracy, ``predict`` and the
sparse categorical cross-entropy ``cnnkeras.training`` compiles work unchanged;
that cross-entropy is y_D + log sum_i exp(-y_i). The rest of eq. (9),
log(1 + exp(-j) / sum_i exp(-y_i)), depends on y alone, so the RBF layer adds
it as its activity loss (``RubbishClassPenalty``, j = ``rubbish_j``, 10 by
default; the paper gives no value). Keras sums the two, so the training loss is
eq. (9) exactly.

``distort=True`` adds section III.C's training-time distortions (random shifts,
scaling, squeezing and horizontal shear on the padded image, background fill),
identity at inference; they have no parameters.

Training (``experiments/lenet.py``): the paper ran 20 passes of stochastic
diagonal Levenberg-Marquardt, one sample a step, global rate 0.0005 x2,
0.0002 x3, 0.0001 x3, 0.00005 x4, 0.00001 after. ``lenet5_mnist`` runs 40
passes of SGD with momentum 0.9, batch 32, at a constant 0.0005 (``TrainConfig``
has no schedule), with ``distort=True``.

The geometry needs 32x32 (smaller inputs are zero-padded up to it), so
``small_input_shape`` is the paper's size; larger inputs leave C5 with a spatial
map that is flattened before F6 (F6 then has more parameters than the paper's).

``lenet5_modern``: the same geometry with ReLU, max pooling, a full C3
(2,416 parameters) and a softmax output, on the same [0, 1] scaling of the pixels.
"""

from __future__ import annotations

from typing import Optional

import keras
from keras import layers

from cnnkeras.architectures.blocks import image_input
from cnnkeras.layers.lenet import (
    ConnectionTableConv2D,
    EuclideanRBF,
    RubbishClassPenalty,
    ScaledTanh,
    Subsampling2D,
)
from cnnkeras.registry import ARCHITECTURES

PAPER_SIZE = 32
# Section II.B: background (white, pixel 0) -> -0.1, foreground (ink, 255) -> 1.175.
BACKGROUND, FOREGROUND = -0.1, 1.175
RUBBISH_J = 10.0  # eq. (9)'s positive constant j
# Section III.C's distortions (the paper gives no magnitudes): shift by up to 2 pixels,
# scale each axis by up to 10% (scaling and squeezing), shear horizontally by up to 15%.
SHIFT, SCALE, SHEAR = 2 / PAPER_SIZE, 0.1, 0.15

# Table I: the S2 maps each C3 map is connected to. Maps 0-5 see 3 neighbouring
# maps, 6-11 see 4 neighbouring maps, 12-14 see 4 non-neighbouring ones, 15 sees all 6.
C3_TABLE = (
    tuple(tuple(sorted((m + i) % 6 for i in range(3))) for m in range(6))
    + tuple(tuple(sorted((m + i) % 6 for i in range(4))) for m in range(6))
    + ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))
)


def lecun_uniform(fan_in: float, seed: Optional[int]):
    """Uniform in +-2.4/F_i, the paper's initialisation (``seed`` None: Keras' global seed)."""
    limit = 2.4 / fan_in
    return keras.initializers.RandomUniform(-limit, limit, seed=seed)


def distortions(x, *, seed: Optional[int], name: str):
    """Random planar affine distortions while training (identity at inference), background fill.

    ``seed`` None draws from Keras' global seed (``keras.utils.set_random_seed``).
    """
    seeds = [None] * 3 if seed is None else [seed, seed + 1, seed + 2]
    fill = dict(fill_mode="constant", fill_value=0.0)
    x = layers.RandomTranslation(SHIFT, SHIFT, seed=seeds[0], name=f"{name}_shift", **fill)(x)
    x = layers.RandomZoom(SCALE, SCALE, seed=seeds[1], name=f"{name}_scale", **fill)(x)
    # (0, SHEAR): the layer flips the sign at random; a float range would not reload
    return layers.RandomShear(x_factor=(0.0, SHEAR), seed=seeds[2], name=f"{name}_shear",
                              **fill)(x)


def paper_input(input_shape, name: str):
    """``(inputs, x)``: the image in [0, 255], scaled to [0, 1] (``pixels``) and zero-padded
    (background) up to 32x32 when smaller (28x28 MNIST -> 32x32)."""
    height, width, _ = input_shape
    if height < 10 or width < 10:
        raise ValueError(f"{name} needs an input of at least 10x10 (padded to 32x32). "
                         f"Received: input_shape={tuple(input_shape)}")
    inputs, x = image_input(input_shape)
    pad_h, pad_w = max(0, PAPER_SIZE - height), max(0, PAPER_SIZE - width)
    if pad_h or pad_w:
        x = layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2),
                                  (pad_w // 2, pad_w - pad_w // 2)), name="pad")(x)
    return inputs, x


def rbf_output(features, num_classes: int, *, rubbish_j: float = RUBBISH_J,
               prototype_initializer=None):
    """Distances y to fixed prototypes (``rbf``, with eq. 9's rubbish term as its loss) ->
    softmax(-y) (``predictions``)."""
    distances = EuclideanRBF(num_classes, prototype_initializer=prototype_initializer,
                             activity_regularizer=RubbishClassPenalty(rubbish_j),
                             name="rbf", dtype="float32")(features)
    logits = layers.Rescaling(-1.0, name="negative_distance", dtype="float32")(distances)
    return layers.Softmax(name="predictions", dtype="float32")(logits)


@ARCHITECTURES.register("lenet5", small_input_shape=(32, 32, 1))
def lenet5(input_shape=(32, 32, 1), num_classes: int = 10, *, seed: Optional[int] = None,
           rubbish_j: float = RUBBISH_J, distort: bool = False) -> keras.Model:
    """LeNet-5 as published; see the module docstring for the layers, input, output and loss.

    ``seed`` fixes the initial weights and distortions; None draws them from Keras'
    global seed (``keras.utils.set_random_seed``, which ``cnnkeras train`` calls).
    """
    seeds = [None] * 5 if seed is None else [seed + k for k in (0, 1, 2, 3, 10)]
    inputs, x = paper_input(input_shape, "lenet5")
    if distort:
        x = distortions(x, seed=seeds[4], name="distort")
    x = layers.Rescaling(FOREGROUND - BACKGROUND, offset=BACKGROUND, name="normalize")(x)
    channels = input_shape[-1]
    x = layers.Conv2D(6, 5, kernel_initializer=lecun_uniform(25 * channels, seeds[0]),
                      name="c1_conv")(x)
    x = ScaledTanh(name="c1_tanh")(x)
    x = Subsampling2D(2, name="s2_subsample")(x)
    x = ScaledTanh(name="s2_tanh")(x)
    connections = sum(len(inputs_) for inputs_ in C3_TABLE)
    x = ConnectionTableConv2D(
        C3_TABLE, 5, kernel_initializer=lecun_uniform(25 * connections / 16, seeds[1]),
        name="c3_conv")(x)
    x = ScaledTanh(name="c3_tanh")(x)
    x = Subsampling2D(2, name="s4_subsample")(x)
    x = ScaledTanh(name="s4_tanh")(x)
    x = layers.Conv2D(120, 5, kernel_initializer=lecun_uniform(25 * 16, seeds[2]),
                      name="c5_conv")(x)
    x = ScaledTanh(name="c5_tanh")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, kernel_initializer=lecun_uniform(x.shape[-1], seeds[3]),
                     name="f6_dense")(x)
    x = ScaledTanh(name="f6_tanh")(x)
    outputs = rbf_output(x, num_classes, rubbish_j=rubbish_j)
    return keras.Model(inputs, outputs, name="lenet5")


@ARCHITECTURES.register("lenet5_modern", small_input_shape=(32, 32, 1))
def lenet5_modern(input_shape=(32, 32, 1), num_classes: int = 10, *,
                  dropout: float = 0.0, distort: bool = False) -> keras.Model:
    """LeNet-5's geometry with ReLU, 2x2 max pooling, a full C3 and a softmax output.

    ``distort=True`` adds ``lenet5``'s training-time distortions (seeded globally).
    """
    inputs, x = paper_input(input_shape, "lenet5_modern")
    if distort:
        x = distortions(x, seed=None, name="distort")
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
