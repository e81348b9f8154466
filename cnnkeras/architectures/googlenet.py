"""GoogLeNet / Inception v1 (Szegedy et al., 2014), Table 1 of the paper.

Stem: conv1 7x7/2 64 -> 3x3/2 max pool -> LRN -> conv2 1x1 64 -> conv2 3x3 192
-> LRN -> 3x3/2 max pool; then the nine inception modules 3a-5b, all made by
``inception_module`` from the rows of ``INCEPTION_TABLE`` (a 3x3/2 max pool
after 3b and 4e); then global average pooling (the paper's 7x7 average pool at
224x224), dropout 0.4, and a 1000-way softmax ``predictions``.

Parameters: 6,998,552 at 224x224x3 for 1000 classes without the auxiliary
heads. The paper's Table 1 says 6.8M, but its "K" is 1024 (its conv2 row, 112K,
is 64*64 + 3*3*64*192 = 114,688 weights) and it counts no biases (8,280 here);
6,998,552 / 1024 = 6,834.5K, 0.5% above the table's 6,797.7K total; the rest
is the table's conv1 row (2.7K listed, 7*7*3*64 = 9,408 weights). LRN has no
parameters.

``aux_classifiers=True`` adds the two training-time heads on 4a and 4d (5x5/3
average pool, 1x1 conv 128, fc 1024, dropout 0.7, softmax), named ``aux1`` and
``aux2``: the model then has three outputs ``[predictions, aux1, aux2]``,
compiled with one loss per output and the loss weights
``loss_weights(model)`` gives, (1, 0.3, 0.3). ``inference_model(model)`` drops
the heads for inference.

Any input from 32x32 works (all padding is "same"); the auxiliary heads need
4a's map to be at least 5x5, which is an input of at least 65x65.
"""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.architectures.blocks import image_input
from cnnkeras.layers.lrn import LocalResponseNormalization
from cnnkeras.registry import ARCHITECTURES

AUX_LOSS_WEIGHT = 0.3
AUX_AFTER = ("4a", "4d")

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, max pool after)
INCEPTION_TABLE = (
    ("3a", (64, 96, 128, 16, 32, 32), False),
    ("3b", (128, 128, 192, 32, 96, 64), True),
    ("4a", (192, 96, 208, 16, 48, 64), False),
    ("4b", (160, 112, 224, 24, 64, 64), False),
    ("4c", (128, 128, 256, 24, 64, 64), False),
    ("4d", (112, 144, 288, 32, 64, 64), False),
    ("4e", (256, 160, 320, 32, 128, 128), True),
    ("5a", (256, 160, 320, 32, 128, 128), False),
    ("5b", (384, 192, 384, 48, 128, 128), False),
)


def conv_relu(x, filters: int, kernel: int, *, stride: int = 1, name: str):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", name=f"{name}_conv")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def inception_module(x, widths, *, name: str):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1) concatenated."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
    branch1 = conv_relu(x, n1x1, 1, name=f"{name}_1x1")
    branch2 = conv_relu(x, n3x3_reduce, 1, name=f"{name}_3x3_reduce")
    branch2 = conv_relu(branch2, n3x3, 3, name=f"{name}_3x3")
    branch3 = conv_relu(x, n5x5_reduce, 1, name=f"{name}_5x5_reduce")
    branch3 = conv_relu(branch3, n5x5, 5, name=f"{name}_5x5")
    branch4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = conv_relu(branch4, pool_proj, 1, name=f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_output")([branch1, branch2, branch3, branch4])


def auxiliary_head(x, num_classes: int, *, name: str):
    """5x5/3 average pool, 1x1 conv 128, fc 1024, dropout 0.7, softmax."""
    height, width = x.shape[1], x.shape[2]
    if height < 5 or width < 5:
        raise ValueError(f"{name}: the auxiliary head's 5x5 average pool needs a map of at "
                         f"least 5x5, got {height}x{width}; use an input of at least 65x65 "
                         f"or aux_classifiers=False.")
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_relu(x, 128, 1, name=f"{name}_1x1")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name=name, dtype="float32")(x)


def stem(x, *, lrn: bool):
    x = conv_relu(x, 64, 7, stride=2, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    if lrn:
        x = LocalResponseNormalization(name="pool1_lrn")(x)
    x = conv_relu(x, 64, 1, name="conv2_reduce")
    x = conv_relu(x, 192, 3, name="conv2")
    if lrn:
        x = LocalResponseNormalization(name="conv2_lrn")(x)
    return layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)


@ARCHITECTURES.register("googlenet", small_input_shape=(32, 32, 3))
def googlenet(input_shape=(224, 224, 3), num_classes: int = 1000, *,
              aux_classifiers: bool = False, dropout: float = 0.4,
              lrn: bool = True) -> keras.Model:
    """GoogLeNet; see the module docstring for the layers, counts and auxiliary heads."""
    height, width = input_shape[:2]
    if height < 32 or width < 32:
        raise ValueError(f"googlenet downsamples by 32: it needs an input of at least "
                         f"32x32. Received: input_shape={tuple(input_shape)}")
    inputs, x = image_input(input_shape)
    x = stem(x, lrn=lrn)
    aux_outputs = []
    for name, widths, pool_after in INCEPTION_TABLE:
        x = inception_module(x, widths, name=f"inception{name}")
        if aux_classifiers and name in AUX_AFTER:
            aux_name = f"aux{AUX_AFTER.index(name) + 1}"
            aux_outputs.append(auxiliary_head(x, num_classes, name=aux_name))
        if pool_after:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{name[0]}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions",
                           dtype="float32")(x)
    return keras.Model(inputs, [outputs, *aux_outputs] if aux_outputs else outputs,
                       name="googlenet")


def loss_weights(model: keras.Model):
    """Per-output loss weights: 1 for ``predictions``, 0.3 for each ``aux*`` head.

    A dict keyed by output name (``{"predictions": 1.0, "aux1": 0.3, "aux2": 0.3}``
    with the heads), or ``None`` for a single-output model. Keras 3 wants one loss
    per output as well::

        model.compile(loss={name: "sparse_categorical_crossentropy"
                            for name in model.output_names},
                      loss_weights=loss_weights(model), ...)
    """
    names = list(model.output_names)
    if len(names) == 1:
        return None
    return {name: AUX_LOSS_WEIGHT if name.startswith("aux") else 1.0 for name in names}


def inference_model(model: keras.Model) -> keras.Model:
    """The same layers and weights with only the ``predictions`` output."""
    return keras.Model(model.inputs, model.get_layer("predictions").output, name=model.name)
