"""AlexNet (Krizhevsky, Sutskever, Hinton, 2012) and ZFNet (Zeiler and Fergus, 2013).

Both are five convolutions and three dense layers; the variants are the stage
tables below, looped by one builder.

``alexnet`` at 227x227x3: conv1 96@11x11 stride 4 -> 55x55x96 (34,944
parameters), ReLU, local response normalisation (k=2, n=5, alpha=1e-4,
beta=0.75), overlapping 3x3 stride-2 max pooling -> 27x27; conv2 256@5x5 pad 2,
LRN, pool -> 13x13; conv3 384, conv4 384, conv5 256 @3x3 pad 1, pool -> 6x6x256;
fc6 4096, fc7 4096 (``dense_units``, each with dropout 0.5), fc8 =
``predictions``. 62,378,344 parameters for 1000 classes. ``groups=2`` builds the
paper's two-tower network, where conv2, conv4 and conv5 see only the maps on
their own GPU: 60,965,224.

``zfnet`` at 224x224x3: conv1 96@7x7 stride 2 (pad 1) -> 110x110, pool -> 55;
conv2 256@5x5 stride 2 -> 26, pool -> 13; conv3-5 with 512, 1024 and 512
filters (the paper's larger model, Table 2) -> pool -> 6x6x512; one tower, the
same LRN and dense layers. The paper's 55 and 13 after pooling are Caffe's
ceil-rounded pools; ``padding="same"`` pooling gives those sizes here.

Small inputs work while every stage keeps at least one pixel (alexnet from
67x67, zfnet from 53x53); anything smaller raises a ``ValueError`` naming the
layer that no longer fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import keras
from keras import layers

from cnnkeras.architectures.blocks import image_input
from cnnkeras.geometry import Window, check_geometry
from cnnkeras.layers.lrn import LocalResponseNormalization
from cnnkeras.registry import ARCHITECTURES


@dataclass(frozen=True)
class ConvStage:
    """One convolution stage: conv -> ReLU [-> LRN] [-> 3x3/2 max pool]."""

    filters: int
    kernel: int
    stride: int = 1
    padding: Union[int, str] = "same"  # zeros each side, or "same"
    lrn: bool = False
    pool: Optional[str] = None  # pooling padding, "valid" or "same"; None: no pooling
    grouped: bool = False  # split across the two towers when groups=2


STAGES = {
    "alexnet": (
        ConvStage(96, 11, 4, padding=0, lrn=True, pool="valid"),
        ConvStage(256, 5, padding=2, lrn=True, pool="valid", grouped=True),
        ConvStage(384, 3, padding=1),
        ConvStage(384, 3, padding=1, grouped=True),
        ConvStage(256, 3, padding=1, pool="valid", grouped=True),
    ),
    "zfnet": (
        ConvStage(96, 7, 2, padding=1, lrn=True, pool="same"),
        ConvStage(256, 5, 2, padding=0, lrn=True, pool="same"),
        ConvStage(512, 3, padding=1),
        ConvStage(1024, 3, padding=1),
        ConvStage(512, 3, padding=1, pool="valid"),
    ),
}


def stage_windows(stages) -> list[Window]:
    """Every conv and pool of the stage table, for ``check_geometry``'s size walk."""
    windows = []
    for index, stage in enumerate(stages, 1):
        windows.append(Window(f"conv{index}_conv", stage.kernel, stage.stride, stage.padding))
        if stage.pool:
            windows.append(Window(f"conv{index}_pool", 3, 2, stage.pool))
    return windows


def conv_stage(x, stage: ConvStage, *, groups: int, name: str):
    """One row of the table: explicit zero padding, conv, ReLU, LRN, pooling."""
    padding = stage.padding
    if isinstance(padding, int) and padding > 0:
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    x = layers.Conv2D(
        stage.filters, stage.kernel, strides=stage.stride,
        padding="same" if padding == "same" else "valid",
        groups=groups if stage.grouped else 1, name=f"{name}_conv",
    )(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if stage.lrn:
        x = LocalResponseNormalization(name=f"{name}_lrn")(x)
    if stage.pool:
        x = layers.MaxPooling2D(3, strides=2, padding=stage.pool, name=f"{name}_pool")(x)
    return x


def classifier(x, num_classes: int, *, units: int, dropout: float):
    """fc6, fc7 (ReLU, dropout) and the softmax ``predictions`` layer."""
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(units, activation="relu", name=name)(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions",
                        dtype="float32")(x)


def build_family(variant: str, input_shape, num_classes: int, *, groups: int = 1,
                 dense_units: int = 4096, dropout: float = 0.5, lrn: bool = True) -> keras.Model:
    if groups not in (1, 2):
        raise ValueError(f"groups must be 1 (one tower) or 2 (the paper's two towers). "
                         f"Received: groups={groups!r}")
    stages = STAGES[variant]
    if not lrn:
        stages = tuple(ConvStage(**{**stage.__dict__, "lrn": False}) for stage in stages)
    check_geometry(input_shape, stage_windows(stages))
    inputs, x = image_input(input_shape)
    for index, stage in enumerate(stages, 1):
        x = conv_stage(x, stage, groups=groups, name=f"conv{index}")
    outputs = classifier(x, num_classes, units=dense_units, dropout=dropout)
    return keras.Model(inputs, outputs, name=variant)


@ARCHITECTURES.register("alexnet", small_input_shape=(67, 67, 3))
def alexnet(input_shape=(227, 227, 3), num_classes: int = 1000, *, groups: int = 1,
            dense_units: int = 4096, dropout: float = 0.5, lrn: bool = True) -> keras.Model:
    """AlexNet; ``groups=2`` for the two-tower original (see the module docstring)."""
    return build_family("alexnet", input_shape, num_classes, groups=groups,
                        dense_units=dense_units, dropout=dropout, lrn=lrn)


@ARCHITECTURES.register("zfnet", small_input_shape=(64, 64, 3))
def zfnet(input_shape=(224, 224, 3), num_classes: int = 1000, *, dense_units: int = 4096,
          dropout: float = 0.5, lrn: bool = True) -> keras.Model:
    """ZFNet: AlexNet with a 7x7 stride-2 first layer, stride-2 conv2, wider conv3-5."""
    return build_family("zfnet", input_shape, num_classes, dense_units=dense_units,
                        dropout=dropout, lrn=lrn)
