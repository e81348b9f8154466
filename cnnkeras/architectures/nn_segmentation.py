"""Dense prediction on the tf.nn convolution layers: one class per pixel.

- ``atrous_segmenter``: a stack of ``NNAtrousConv2D`` with growing rates. Nothing
  pools, so the output keeps the input's size while the receptive field grows
  to ``receptive_field(kernel_sizes, dilation_rates)`` (31 pixels for 3x3 at
  rates 1, 2, 4, 8: a whole 28x28 digit).
- ``transpose_decoder``: strided ``Conv2D`` encoder, then ``NNConv2DTranspose``
  decoder blocks mirroring it back up to the input size.

Both output ``(h, w, num_classes)`` softmax maps, registered with
``task="segmentation"``: the targets are ``(h, w)`` integer masks (e.g. the
``segmentation:SPEC`` masks, class 0 background and 1 + digit for the
digit's pixels) and sparse categorical cross-entropy applies per pixel.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from cnnkeras.architectures.blocks import image_input
from cnnkeras.architectures.nn_variants import activated
from cnnkeras.geometry import GeometryError, IntOrSeq, StrOrSeq, per_block_options
from cnnkeras.layers import NNAtrousConv2D, NNConv2DTranspose
from cnnkeras.registry import ARCHITECTURES


def receptive_field(kernel_sizes: Sequence[int], dilation_rates: Sequence[int]) -> int:
    """Receptive field of stacked stride-1 convs: 1 + sum((k - 1) * rate)."""
    return 1 + sum((int(k) - 1) * int(r)
                   for k, r in zip(kernel_sizes, dilation_rates, strict=True))


def pixel_classifier(x, num_classes: int):
    """1x1 conv to per-pixel softmax ``predictions``."""
    return layers.Conv2D(num_classes, 1, activation="softmax", name="predictions",
                         dtype="float32")(x)


@ARCHITECTURES.register("atrous_segmenter", small_input_shape=(12, 12, 1), task="segmentation")
def atrous_segmenter(
    input_shape=(28, 28, 1), num_classes: int = 11, *, filters: IntOrSeq = 32,
    kernel_sizes: IntOrSeq = 3, dilation_rates: IntOrSeq = (1, 2, 4, 8),
    batch_norm: bool = True, dropout: float = 0.0,
) -> keras.Model:
    """Blocks ``block{i}``: atrous conv (rate ``dilation_rates[i]``, ``"same"``) -> (BN) -> ReLU.

    One block per rate. ``tf.nn.atrous_conv2d`` has no stride and the padding is
    ``"same"`` so every pixel keeps a prediction; the options that vary are
    filters, kernel sizes and dilation rates.
    """
    rates, options = per_block_options(dilation_rates, "dilation_rates", filters=filters,
                                       kernel_sizes=kernel_sizes)
    inputs, x = image_input(input_shape)
    for index, (width, kernel, rate) in enumerate(
        zip(options["filters"], options["kernel_sizes"], rates, strict=True), 1
    ):
        conv = NNAtrousConv2D(int(width), kernel, rate=int(rate), padding="same",
                              use_bias=not batch_norm, name=f"block{index}_conv")
        x = activated(x, conv, batch_norm=batch_norm, name=f"block{index}")
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, pixel_classifier(x, num_classes), name="atrous_segmenter")


def check_round_trip(sizes, **received) -> None:
    """The decoder must end at the input size; else say where the sizes stopped inverting."""
    if sizes[-1] != sizes[0]:
        path = " -> ".join("x".join(map(str, size)) for size in sizes)
        options = ", ".join(f"{key}={value!r}" for key, value in received.items())
        raise GeometryError(
            f"transpose_decoder: the decoder does not return the input size ({path}). "
            f"Each encoder step must divide exactly: with padding='same' the stride divides "
            f"the size, with 'valid' it divides (size - kernel) and kernel >= stride. "
            f"Received: {options}"
        )


@ARCHITECTURES.register("transpose_decoder", small_input_shape=(12, 12, 1), task="segmentation")
def transpose_decoder(
    input_shape=(28, 28, 1), num_classes: int = 11, *, filters: IntOrSeq = (32, 64),
    kernel_sizes: IntOrSeq = 3, strides: IntOrSeq = 2, paddings: StrOrSeq = "same",
    bottleneck_convs: int = 2, batch_norm: bool = True,
) -> keras.Model:
    """Encoder ``enc{i}`` (Conv2D), ``bottleneck{j}`` 3x3 convs, decoder ``dec{i}``.

    Decoder block i (NNConv2DTranspose) undoes encoder block i (same kernel,
    stride and padding) and outputs encoder block i-1's width. The bottleneck
    convs widen the receptive field at the coarsest size (two of them take the
    default encoder's 7 pixels to 23). The decoder must return the input size
    exactly; settings whose sizes do not invert raise ``GeometryError``.
    """
    filters, options = per_block_options(filters, kernel_sizes=kernel_sizes, strides=strides,
                                         paddings=paddings)
    blocks = list(zip(filters, options["kernel_sizes"], options["strides"], options["paddings"],
                      strict=True))
    inputs, x = image_input(input_shape)
    sizes = [tuple(input_shape[:2])]
    for index, (width, kernel, stride, padding) in enumerate(blocks, 1):
        conv = layers.Conv2D(int(width), kernel, strides=stride, padding=padding,
                             use_bias=not batch_norm, name=f"enc{index}_conv")
        x = activated(x, conv, batch_norm=batch_norm, name=f"enc{index}")
        sizes.append(tuple(x.shape[1:3]))
    for index in range(1, bottleneck_convs + 1):
        conv = layers.Conv2D(int(filters[-1]), 3, padding="same", use_bias=not batch_norm,
                             name=f"bottleneck{index}_conv")
        x = activated(x, conv, batch_norm=batch_norm, name=f"bottleneck{index}")
    widths = (filters[0], *filters[:-1])
    for index in range(len(blocks), 0, -1):
        _, kernel, stride, padding = blocks[index - 1]
        conv = NNConv2DTranspose(int(widths[index - 1]), kernel, strides=stride,
                                 padding=padding, use_bias=not batch_norm,
                                 name=f"dec{index}_convtranspose")
        x = activated(x, conv, batch_norm=batch_norm, name=f"dec{index}")
        sizes.append(tuple(x.shape[1:3]))
    check_round_trip(sizes, kernel_sizes=kernel_sizes, strides=strides, paddings=paddings,
                     input_shape=tuple(input_shape))
    return keras.Model(inputs, pixel_classifier(x, num_classes), name="transpose_decoder")
