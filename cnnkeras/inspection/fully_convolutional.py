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

from cnnkeras.inspection.graph import MODEL_INPUT, layer_calls


def _chain(model) -> list:
    """(layer, input shape) of each layer but the input, checking each feeds the next."""
    calls = layer_calls(model)
    starts = [call for call in calls if isinstance(call.layer, keras.layers.InputLayer)]
    previous = (starts[0].name if len(starts) == 1 else MODEL_INPUT, 0)
    shape = tuple(model.inputs[0].shape)
    chain = []
    for call in calls:
        if isinstance(call.layer, keras.layers.InputLayer):
            continue
        if call.inputs != (previous,) or len(call.output_shapes) != 1:
            raise ValueError(
                f"fc_to_conv needs a plain chain of layers (each feeding the next); layer "
                f"{call.name!r} breaks the chain. Received model {model.name!r}."
            )
        chain.append((call.layer, shape))
        previous, shape = (call.name, 0), call.output_shapes[0]
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
    kinds = [type(layer) for layer, _ in chain]
    if keras.layers.Flatten not in kinds or keras.layers.Dense not in kinds[
            kinds.index(keras.layers.Flatten):]:
        raise ValueError(f"fc_to_conv needs a Flatten followed by Dense layers; "
                         f"{model.name!r} has {', '.join(k.__name__ for k in kinds)}.")
    inputs = keras.Input(shape=(None, None, model.inputs[0].shape[-1]),
                         name=model.inputs[0].name)
    x, map_shape = inputs, None
    for layer, input_shape in chain:
        if isinstance(layer, keras.layers.Flatten):
            map_shape = input_shape[1:]
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
