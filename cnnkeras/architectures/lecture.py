"""The lecture CNN: conv 25@3x3, pool, conv 50@3x3, pool, dense 100, dense softmax.

On 28x28x1 its feature maps are 26x26x25, 13x13x25, 11x11x50, 5x5x50 and it has
137,660 parameters for 10 classes. Every conv block's filters, kernel size,
stride and padding are options (one entry per block), so the tuner can vary
them and the number of blocks.
"""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.architectures.blocks import BN_MOMENTUM, image_input
from cnnkeras.geometry import IntOrSeq, StrOrSeq, Window, per_block
from cnnkeras.geometry import check_geometry as walk
from cnnkeras.registry import ARCHITECTURES


def check_geometry(input_shape, filters, kernel_sizes, strides, paddings, pool_size):
    """Walk the feature-map size through every conv and pool; raise naming the layer that fails."""
    windows = []
    for index, (kernel, stride, padding) in enumerate(
            zip(kernel_sizes, strides, paddings, strict=True), 1):
        windows.append(Window(f"block{index}_conv", kernel, stride, padding))
        if pool_size > 1:
            windows.append(Window(f"block{index}_pool", pool_size, pool_size))
    return walk(input_shape, windows)


def conv_block(x, filters: int, *, kernel_size: int, strides: int, padding: str,
               pool_size: int, batch_norm: bool, name: str):
    """Conv -> (BN, momentum ``BN_MOMENTUM``) -> ReLU -> max pool."""
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding,
        use_bias=not batch_norm, name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if pool_size > 1:
        x = layers.MaxPooling2D(pool_size, name=f"{name}_pool")(x)
    return x


def lecture_cnn_geometry(input_shape, num_classes: int, *, filters, kernel_sizes, strides,
                         paddings, pool_size, **layer_options) -> tuple:
    """``lecture_cnn``'s feature-map walk, no layer built: the last map's (height, width).

    Takes every argument of ``lecture_cnn`` (defaults filled in by the caller, e.g.
    ``inspect.signature(lecture_cnn).bind(...).apply_defaults()``); options that do not
    change sizes (``dense_units``, ``dropout``, ...) are ignored. Raises the builder's
    ``GeometryError``, naming the first conv or pool that does not fit.
    """
    count = 1 if isinstance(filters, int) else len(filters)
    return check_geometry(input_shape, per_block(filters, count, "filters"),
                          per_block(kernel_sizes, count, "kernel_sizes"),
                          per_block(strides, count, "strides"),
                          per_block(paddings, count, "paddings"), pool_size)


@ARCHITECTURES.register("lecture_cnn", small_input_shape=(28, 28, 1),
                        geometry=lecture_cnn_geometry)
def lecture_cnn(
    input_shape=(28, 28, 1),
    num_classes: int = 10,
    *,
    filters: IntOrSeq = (25, 50),
    kernel_sizes: IntOrSeq = 3,
    strides: IntOrSeq = 1,
    paddings: StrOrSeq = "valid",
    pool_size: int = 2,
    dense_units: int = 100,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> keras.Model:
    filters = per_block(filters, 1 if isinstance(filters, int) else len(filters), "filters")
    count = len(filters)
    kernel_sizes = per_block(kernel_sizes, count, "kernel_sizes")
    strides = per_block(strides, count, "strides")
    paddings = per_block(paddings, count, "paddings")
    check_geometry(input_shape, filters, kernel_sizes, strides, paddings, pool_size)

    inputs, x = image_input(input_shape)
    for index, (width, kernel, stride, padding) in enumerate(
        zip(filters, kernel_sizes, strides, paddings, strict=True), 1
    ):
        x = conv_block(
            x, int(width), kernel_size=int(kernel), strides=int(stride), padding=padding,
            pool_size=pool_size, batch_norm=batch_norm, name=f"block{index}",
        )
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="fc1_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name="lecture_cnn")
