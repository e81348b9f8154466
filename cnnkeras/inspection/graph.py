"""A model's layer graph through public Keras only: what feeds each layer, and its output shapes.

Connectivity comes from ``model.get_config()``: the ``inbound_nodes`` a ``.keras``
file stores, each input tensor named by ``keras_history: [layer, node, tensor]``,
a format Keras keeps loadable across releases. Shapes come from ``layer.output``.
A ``Sequential`` model stores no nodes: each layer feeds the next, the first
one the model's input (named ``MODEL_INPUT``). A layer called more than once in
the model (a shared layer) raises ``ValueError``: its shapes would be ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

MODEL_INPUT = "<input>"  # the producer of a Sequential model's input


@dataclass(frozen=True)
class LayerCall:
    """One layer of a model: ``(layer name, output index)`` of each input, and its outputs."""

    layer: keras.layers.Layer
    inputs: tuple
    output_shapes: tuple  # one shape per output tensor, batch axis included

    @property
    def name(self) -> str:
        return self.layer.name


def _tensor_sources(value) -> list:
    """``(layer name, output index)`` of every serialized tensor in a node, in call order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            name, _node, index = value["config"]["keras_history"]
            return [(name, int(index))]
        return [source for item in value.values() for source in _tensor_sources(item)]
    if isinstance(value, (list, tuple)):
        return [source for item in value for source in _tensor_sources(item)]
    return []


def _sources(model) -> dict:
    """Layer name -> the ``(producer, output index)`` of each tensor it is called on."""
    if isinstance(model, keras.Sequential):
        names = [MODEL_INPUT] + [layer.name for layer in model.layers]
        return {name: [(previous, 0)] for previous, name in zip(names[:-1], names[1:], strict=True)}
    config = model.get_config()
    if "layers" not in config:
        raise ValueError(f"{model.name!r} is not a functional or sequential model; its layer "
                         f"graph is unknown. Received: {type(model).__name__}.")
    sources = {}
    for entry in config["layers"]:
        nodes = entry["inbound_nodes"]
        if len(nodes) > 1:
            raise ValueError(f"layer {entry['name']!r} is called {len(nodes)} times in "
                             f"{model.name!r}; only layers called once can be followed.")
        sources[entry["name"]] = _tensor_sources(nodes[0]) if nodes else []
    return sources


def output_shapes(layer) -> tuple:
    """The shape of each output tensor of ``layer``'s call, batch axis included."""
    return tuple(tuple(tensor.shape) for tensor in keras.tree.flatten(layer.output))


def layer_calls(model) -> list[LayerCall]:
    """One ``LayerCall`` per layer of ``model``, in ``model.layers`` (topological) order."""
    sources = _sources(model)
    return [LayerCall(layer, tuple(sources[layer.name]), output_shapes(layer))
            for layer in model.layers]
