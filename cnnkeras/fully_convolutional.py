"""A classifier's dense head as convolutions, so the network slides over larger images.

The first ``Dense`` after ``Flatten`` sees the whole h x w x c map: it becomes an
h x w ``"valid"`` convolution with the same weights (reshaped, since ``Flatten``
orders features h, w, c); each later ``Dense`` becomes a 1x1 convolution. On
the original input size the output is the same numbers with a 1x1 spatial map;
on a larger image it is a map of class scores, one per window position, equal
to running the original classifier on each window (windows a total stride
apart), but sharing the convolutions' work.
"""

from __future__ import annotations

import keras
import numpy as np


def _chain(model) -> list:
    """The model's layers (without the input), checking each feeds the next."""
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0]
    for layer in chain:
        if len(layer._inbound_nodes) != 1 or layer.input is not previous:
            raise ValueError(
                f"fc_to_conv needs a plain chain of layers (each feeding the next); layer "
                f"{layer.name!r} breaks the chain. Received model {model.name!r}."
            )
        previous = layer.output
    return chain


def _dense_as_conv(dense, kernel_size: tuple, channels: int):
    """A Conv2D with ``dense``'s weights, the kernel reshaped to (kh, kw, channels, units)."""
    conv = keras.layers.Conv2D(
        dense.units, kernel_size, activation=dense.activation, use_bias=dense.use_bias,
        name=dense.name, dtype=dense.dtype_policy,
    )
    conv.build((None, None, None, channels))
    weights = dense.get_weights()
    weights[0] = np.reshape(weights[0], tuple(kernel_size) + (channels, dense.units))
    conv.set_weights(weights)
    return conv


def fc_to_conv(model) -> keras.Model:
    """``model`` with Flatten + Dense... replaced by convolutions, for any input size.

    The model must be a chain (Sequential-like) with a ``Flatten`` followed by
    ``Dense`` layers; layers between them (Dropout, Activation, BatchNormalization)
    are kept. Weights are shared by copy: later training of either model does not
    affect the other.
    """
    chain = _chain(model)
    kinds = [type(layer) for layer in chain]
    if keras.layers.Flatten not in kinds or keras.layers.Dense not in kinds[
            kinds.index(keras.layers.Flatten):]:
        raise ValueError(f"fc_to_conv needs a Flatten followed by Dense layers; "
                         f"{model.name!r} has {', '.join(k.__name__ for k in kinds)}.")
    inputs = keras.Input(shape=(None, None, model.inputs[0].shape[-1]),
                         name=model.inputs[0].name)
    x, map_shape = inputs, None
    for layer in chain:
        if isinstance(layer, keras.layers.Flatten):
            map_shape = tuple(layer.input.shape[1:])
            continue
        if isinstance(layer, keras.layers.Dense) and map_shape is not None:
            clone = _dense_as_conv(layer, map_shape[:2], map_shape[2])
            map_shape = (1, 1, layer.units)
        else:
            clone = layer.__class__.from_config(layer.get_config())
            clone.build(x.shape)
            clone.set_weights(layer.get_weights())
        x = clone(x)
    return keras.Model(inputs, x, name=f"{model.name}_fully_convolutional")
