"""Classifiers on the tf.nn convolution layers: sequences (1D), clips (3D), separable (2D).

- ``conv1d_sequence``: ``NNConv1D`` blocks over ``(steps, channels)``; an image
  ``(h, w, c)`` is read as ``h`` steps of ``w * c`` features (MNIST: 28 rows of 28).
- ``conv3d_volume``: ``NNConv3D`` blocks over clips or volumes ``(frames, h, w, c)``,
  e.g. the ``moving:SPEC`` clips of real digits.
- ``separable_cnn``: a MobileNet/Xception-style classifier of ``NNSeparableConv2D``
  blocks (or ``NNDepthwiseConv2D`` + 1x1 pointwise, ``block_style="depthwise"``);
  ``standard_twin=True`` builds the same network with standard convolutions, and
  ``separable_savings`` counts both.

Every block's filters, kernel size, stride and padding are options (one entry
per block, or one value for all), so a search space can vary them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Optional

import keras
from keras import layers

from cnnkeras.architectures.blocks import BN_MOMENTUM, image_input
from cnnkeras.geometry import IntOrSeq, StrOrSeq, output_shape, per_block_options
from cnnkeras.layers import NNConv1D, NNConv3D, NNDepthwiseConv2D, NNSeparableConv2D
from cnnkeras.registry import ARCHITECTURES

# rank -> (conv layer, max pooling, global average pooling)
RANKS = {
    1: (NNConv1D, layers.MaxPooling1D, layers.GlobalAveragePooling1D),
    3: (NNConv3D, layers.MaxPooling3D, layers.GlobalAveragePooling3D),
}
BLOCK_STYLES = ("separable", "depthwise")


def activated(x, conv: layers.Layer, *, batch_norm: bool, name: str):
    """``conv`` -> (BN) -> ReLU, the extra layers named ``{name}_bn`` and ``{name}_relu``.

    BN's moving statistics use momentum ``BN_MOMENTUM`` (0.9; Keras: 0.99).
    """
    x = conv(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def classifier_head(x, num_classes: int, *, pooling: type, dense_units: int, dropout: float):
    """Global average pool -> (dense ReLU) -> (dropout) -> softmax ``predictions``."""
    x = pooling(name="avg_pool")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="fc1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)


def conv_stack(x, rank: int, filters, *, kernel_sizes, strides, paddings, dilation_rates,
               pool_size: int, batch_norm: bool):
    """Blocks ``block{i}``: tf.nn conv of ``rank`` -> (BN) -> ReLU -> (max pool)."""
    conv, pool, _ = RANKS[rank]
    for index, (width, kernel, stride, padding, rate) in enumerate(
        zip(filters, kernel_sizes, strides, paddings, dilation_rates, strict=True), 1
    ):
        name = f"block{index}"
        x = activated(x, conv(int(width), kernel, strides=stride, padding=padding,
                              dilation_rate=rate, use_bias=not batch_norm, name=f"{name}_conv"),
                      batch_norm=batch_norm, name=name)
        if pool_size > 1:  # a pool that does not fit raises GeometryError naming it
            output_shape(x.shape[1:-1], pool_size, pool_size, layer=f"{name}_pool")
            x = pool(pool_size, name=f"{name}_pool")(x)
    return x


def conv_classifier(rank: int, inputs, x, num_classes: int, name: str, *, filters, pool_size,
                    batch_norm, dense_units, dropout, **block_options) -> keras.Model:
    """The one builder behind ``conv1d_sequence`` and ``conv3d_volume``.

    ``block_options`` are the per-block kernel_sizes, strides, paddings and dilation_rates.
    """
    filters, block_options = per_block_options(filters, **block_options)
    x = conv_stack(x, rank, filters, pool_size=pool_size, batch_norm=batch_norm, **block_options)
    outputs = classifier_head(x, num_classes, pooling=RANKS[rank][2], dense_units=dense_units,
                              dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


@ARCHITECTURES.register("conv1d_sequence", small_input_shape=(12, 12, 1), task="classification")
def conv1d_sequence(
    input_shape=(28, 28, 1), num_classes: int = 10, *, filters: IntOrSeq = (32, 64),
    kernel_sizes: IntOrSeq = 5, strides: IntOrSeq = 1, paddings: StrOrSeq = "same",
    dilation_rates: IntOrSeq = 1, pool_size: int = 2, dense_units: int = 64,
    dropout: float = 0.0, batch_norm: bool = True,
) -> keras.Model:
    """A 1D CNN over ``(steps, channels)``; ``(h, w, c)`` is read as h steps of w*c features.

    ``paddings`` may be ``"causal"`` (each step sees only earlier steps).
    """
    shape = tuple(input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"conv1d_sequence needs input_shape (steps, channels) or (h, w, c). "
                         f"Received: input_shape={shape!r}")
    inputs, x = image_input(shape, name="sequence" if len(shape) == 2 else "image")
    if len(shape) == 3:
        x = layers.Reshape((shape[0], shape[1] * shape[2]), name="rows_as_steps")(x)
    return conv_classifier(
        1, inputs, x, num_classes, "conv1d_sequence", filters=filters, dense_units=dense_units,
        dropout=dropout, kernel_sizes=kernel_sizes, strides=strides, paddings=paddings,
        dilation_rates=dilation_rates, pool_size=pool_size, batch_norm=batch_norm,
    )


@ARCHITECTURES.register("conv3d_volume", small_input_shape=(4, 12, 12, 1), task="classification")
def conv3d_volume(
    input_shape=(8, 28, 28, 1), num_classes: int = 10, *, filters: IntOrSeq = (16, 32),
    kernel_sizes: IntOrSeq = 3, strides: IntOrSeq = 1, paddings: StrOrSeq = "same",
    dilation_rates: IntOrSeq = 1, pool_size: int = 2, dense_units: int = 64,
    dropout: float = 0.0, batch_norm: bool = True,
) -> keras.Model:
    """A 3D CNN over ``(frames, h, w, c)`` clips or ``(depth, h, w, c)`` volumes."""
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"conv3d_volume needs input_shape (frames, h, w, c), e.g. clips from "
                         f"--dataset moving:SPEC. Received: input_shape={shape!r}")
    inputs, x = image_input(shape, name="clip")
    return conv_classifier(
        3, inputs, x, num_classes, "conv3d_volume", filters=filters,
        dense_units=dense_units, dropout=dropout, kernel_sizes=kernel_sizes, strides=strides,
        paddings=paddings, dilation_rates=dilation_rates, pool_size=pool_size,
        batch_norm=batch_norm,
    )


def separable_block(x, filters: int, *, kernel_size: int, stride: int, padding: str,
                    depth_multiplier: int, style: str, name: str):
    """One block: separable conv, depthwise + pointwise, or (the twin) a standard conv."""
    common = dict(strides=stride, padding=padding, use_bias=False)
    if style == "separable":
        conv = NNSeparableConv2D(filters, kernel_size, depth_multiplier=depth_multiplier,
                                 name=f"{name}_sepconv", **common)
        return activated(x, conv, batch_norm=True, name=name)
    if style == "depthwise":
        conv = NNDepthwiseConv2D(kernel_size, depth_multiplier=depth_multiplier,
                                 name=f"{name}_dwconv", **common)
        x = activated(x, conv, batch_norm=True, name=f"{name}_dw")
        return activated(x, layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pwconv"),
                         batch_norm=True, name=f"{name}_pw")
    conv = layers.Conv2D(filters, kernel_size, name=f"{name}_conv", **common)
    return activated(x, conv, batch_norm=True, name=name)


@ARCHITECTURES.register("separable_cnn", small_input_shape=(16, 16, 1), task="classification")
def separable_cnn(
    input_shape=(28, 28, 1), num_classes: int = 10, *, stem_filters: int = 16,
    filters: IntOrSeq = (32, 64, 128), kernel_sizes: IntOrSeq = 3, strides: IntOrSeq = (1, 2, 2),
    paddings: StrOrSeq = "same", depth_multiplier: int = 1, block_style: str = "separable",
    dropout: float = 0.0, standard_twin: bool = False,
) -> keras.Model:
    """Standard 3x3 stem, then separable blocks, global average pool, softmax."""
    if block_style not in BLOCK_STYLES:
        raise ValueError(f"block_style must be one of {', '.join(BLOCK_STYLES)}. "
                         f"Received: block_style={block_style!r}")
    filters, options = per_block_options(filters, kernel_sizes=kernel_sizes, strides=strides,
                                         paddings=paddings)
    inputs, x = image_input(input_shape)
    x = activated(x, layers.Conv2D(stem_filters, 3, padding="same", use_bias=False,
                                   name="stem_conv"), batch_norm=True, name="stem")
    for index, (width, kernel, stride, padding) in enumerate(zip(
        filters, options["kernel_sizes"], options["strides"], options["paddings"], strict=True
    ), 1):
        x = separable_block(x, int(width), kernel_size=kernel, stride=stride, padding=padding,
                            depth_multiplier=depth_multiplier, name=f"block{index}",
                            style="standard" if standard_twin else block_style)
    outputs = classifier_head(x, num_classes, pooling=layers.GlobalAveragePooling2D,
                              dense_units=0, dropout=dropout)
    return keras.Model(inputs, outputs, name="separable_cnn_twin" if standard_twin
                       else "separable_cnn")


@dataclass(frozen=True)
class SeparableSavings:
    """Parameter counts of a separable network and of its standard-conv twin."""

    separable: int
    standard_twin: int

    @property
    def saving(self) -> float:
        """How many times fewer parameters the separable network has."""
        return self.standard_twin / self.separable

    def __str__(self) -> str:
        return (f"separable: {self.separable:,} params, standard twin: "
                f"{self.standard_twin:,} params, saving {self.saving:.1f}x")


def separable_savings(input_shape=(28, 28, 1), num_classes: int = 10,
                      **options) -> SeparableSavings:
    """Build ``separable_cnn`` with ``options`` and its standard twin; count both."""
    options.pop("standard_twin", None)
    separable = separable_cnn(input_shape, num_classes, **options)
    twin = separable_cnn(input_shape, num_classes, standard_twin=True, **options)
    return SeparableSavings(separable.count_params(), twin.count_params())


def standard_twin_savings(name: str, model: keras.Model) -> Optional[SeparableSavings]:
    """``model`` (built by registered ``name`` at default options) against its standard twin.

    None unless ``name``'s builder has a ``standard_twin`` option.
    """
    if name not in ARCHITECTURES:
        return None
    builder = ARCHITECTURES.get(name)
    if "standard_twin" not in inspect.signature(builder).parameters:
        return None
    twin = builder(tuple(model.input_shape[1:]), int(model.output_shape[-1]), standard_twin=True)
    return SeparableSavings(model.count_params(), twin.count_params())
