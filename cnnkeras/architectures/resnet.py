"""ResNet-18/34/50/101/152 (He, Zhang, Ren, Sun, 2015), one builder over a stage table.

Stem: 7x7/2 conv 64, BN, ReLU, 3x3/2 max pool; then four stages (``conv2`` to
``conv5``) of residual units with 64, 128, 256, 512 filters, the first unit of
stages 3-5 striding by 2; then global average pooling and ``predictions``.

- basic unit (18, 34): 3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus the shortcut;
- bottleneck unit (50, 101, 152): 1x1 (filters) -> 3x3 (filters) -> 1x1 (4 x
  filters), the stride on the first 1x1 as in the paper's released models.

A shortcut is the identity, or a 1x1 convolution + BN (the paper's option B)
where the shape changes. Layer names follow ``keras.applications``
(``conv3_block2_1_conv``, ``conv4_block1_0_bn``, ...).

Trainable parameters at 224x224x3, 1000 classes: resnet18 11,689,512; resnet34
21,797,672 (the 21.8M usually quoted); resnet50 25,557,032; resnet101
44,549,160; resnet152 60,192,808 (60.2M). ``count_params()`` also counts BN's
moving means and variances (non-trainable): 11,699,112; 21,814,696;
25,610,152; 44,654,504; 60,344,232. Convolutions have no bias by default, since
the BN after each one makes it redundant. ``conv_bias=True`` adds them, as
``keras.applications`` does, and then resnet50 and resnet152 have exactly the
parameters of ``keras.applications.ResNet50/152(weights=None)`` (25,636,712 and
60,419,944 in all), with the same layer names and weight shapes, so those
weights load by layer name. Any input from 32x32 works.

``filters``, ``kernel_sizes`` and ``strides`` (one value per stage, conv2 to
conv5; the stride is the first unit's) default to the paper's (64, 128, 256,
512), 3 and (1, 2, 2, 2), so searches can vary the stages; the input must
then be at least 4 times the product of the strides on each side, else a
``GeometryError`` names the stage that would get too small a map.

Batch normalization keeps its moving statistics at momentum 0.9 (``BN_MOMENTUM``, PyTorch's
0.1 in its convention), not Keras' 0.99: a run of a few hundred steps then tests with the
statistics of its current weights. At 0.99, resnet18 trained at batch 128 for 3 epochs of
2,000 MNIST images tested at 0.15; at 0.9, at 0.87-0.92 (Adam 1e-3 to 4e-3).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from cnnkeras.architectures.blocks import BN_MOMENTUM, image_input
from cnnkeras.geometry import GeometryError, Window, check_geometry, positive_ints
from cnnkeras.registry import ARCHITECTURES

BN_EPSILON = 1.001e-5
STAGE_FILTERS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)  # of each stage's first unit
STEM_STRIDE = 4  # 7x7/2 conv, then 3x3/2 max pool

# name: (unit, units per stage)
STAGES = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


def conv_bn(x, filters: int, kernel: int, *, stride: int = 1, use_bias: bool, name: str):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same" if kernel > 1 else "valid",
                      use_bias=use_bias, name=f"{name}_conv")(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                     name=f"{name}_bn")(x)


def shortcut(x, filters: int, *, stride: int, use_bias: bool, name: str):
    """Identity when the shape is kept, else a strided 1x1 projection (``_0_conv``)."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, stride=stride, use_bias=use_bias, name=f"{name}_0")


def basic_unit(x, filters: int, *, stride: int = 1, use_bias: bool = False, kernel: int = 3,
               name: str):
    """Two 3x3 (``kernel``) convolutions and a shortcut; ``filters`` out."""
    short = shortcut(x, filters, stride=stride, use_bias=use_bias, name=name)
    x = conv_bn(x, filters, kernel, stride=stride, use_bias=use_bias, name=f"{name}_1")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = conv_bn(x, filters, kernel, use_bias=use_bias, name=f"{name}_2")
    x = layers.Add(name=f"{name}_add")([short, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_unit(x, filters: int, *, stride: int = 1, use_bias: bool = False,
                    kernel: int = 3, name: str):
    """1x1 reduce (strided), 3x3 (``kernel``), 1x1 expand to 4 x ``filters``, and a shortcut."""
    short = shortcut(x, 4 * filters, stride=stride, use_bias=use_bias, name=name)
    x = conv_bn(x, filters, 1, stride=stride, use_bias=use_bias, name=f"{name}_1")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = conv_bn(x, filters, kernel, use_bias=use_bias, name=f"{name}_2")
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = conv_bn(x, 4 * filters, 1, use_bias=use_bias, name=f"{name}_3")
    x = layers.Add(name=f"{name}_add")([short, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


UNITS = {"basic": basic_unit, "bottleneck": bottleneck_unit}


def stem(x, *, use_bias: bool):
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def stage_windows(strides) -> list[Window]:
    """The size walk a ResNet must survive: the stem divides by 4, then each stage's first
    unit by its stride, and a unit must get a map at least as large as its stride."""
    stem = Window("stem (conv1 + pool1)", STEM_STRIDE, STEM_STRIDE)
    return [stem, *(Window(f"conv{stage}_block1", stride, stride)
                    for stage, stride in enumerate(strides, 2))]


def check_stages(variant: str, input_shape, strides) -> None:
    """``GeometryError`` naming the first stage that would get a map smaller than its stride."""
    factor = STEM_STRIDE * math.prod(strides)
    try:
        check_geometry(input_shape, stage_windows(strides))
    except GeometryError as err:
        raise GeometryError(f"{variant} downsamples by {factor}: it needs an input of at least "
                            f"{factor}x{factor}; received input_shape={tuple(input_shape)}, "
                            f"strides={strides}. {err}") from None


def build_resnet(variant: str, input_shape, num_classes: int, *, conv_bias: bool,
                 filters=STAGE_FILTERS, kernel_sizes=3, strides=STAGE_STRIDES) -> keras.Model:
    unit_kind, counts = STAGES[variant]
    owner = f"{variant} (one value per stage, conv2..conv5)"
    filters, kernel_sizes, strides = (
        positive_ints(value, len(counts), label, owner)
        for value, label in ((filters, "filters"), (kernel_sizes, "kernel_sizes"),
                             (strides, "strides")))
    check_stages(variant, input_shape, strides)
    unit = UNITS[unit_kind]
    inputs, x = image_input(input_shape)
    x = stem(x, use_bias=conv_bias)
    for stage, (width, kernel, first_stride, count) in enumerate(
            zip(filters, kernel_sizes, strides, counts, strict=True), 2):
        for index in range(1, count + 1):
            x = unit(x, width, stride=first_stride if index == 1 else 1, use_bias=conv_bias,
                     kernel=kernel, name=f"conv{stage}_block{index}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=variant)


def _register(variant: str):
    def builder(input_shape=(224, 224, 3), num_classes: int = 1000, *,
                conv_bias: bool = False, filters=STAGE_FILTERS, kernel_sizes=3,
                strides=STAGE_STRIDES) -> keras.Model:
        return build_resnet(variant, input_shape, num_classes, conv_bias=conv_bias,
                            filters=filters, kernel_sizes=kernel_sizes, strides=strides)

    builder.__name__ = variant
    builder.__doc__ = (f"{variant}: {STAGES[variant][0]} units {STAGES[variant][1]}; "
                       "see the module docstring.")
    ARCHITECTURES.add(variant, builder, small_input_shape=(32, 32, 3))
    return builder


resnet18, resnet34, resnet50, resnet101, resnet152 = (_register(v) for v in STAGES)
