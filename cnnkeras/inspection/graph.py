"""A model's layer graph through public Keras only: what feeds each layer, and its output shapes.

Connectivity comes from ``model.get_config()``: the ``inbound_nodes`` a ``.keras``
file stores, each input tensor named by ``keras_history: [layer, node, tensor]``,
a format Keras keeps loadable across releases. Shapes come from ``layer.output``.
A ``Sequential`` model stores no nodes: each layer feeds the next, the first
one the model's input (named ``MODEL_INPUT``). A layer called more than once in
the model (a shared layer) raises ``ValueError``: its shapes would be ambiguous.

A model nested in another as a layer (a transfer model's ``inception_v3`` base) is
read through the same accessors: ``all_layer_calls`` and ``walk_layers`` name its
layers by path (``inception_v3/conv2d``), ``layer_probe`` reaches their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import keras

MODEL_INPUT = "<input>"  # the producer of a Sequential model's input
SEPARATOR = "/"  # between a nested model's name and its layer's: "inception_v3/conv2d"


@dataclass(frozen=True)
class LayerCall:
    """One layer of a model: ``(layer name, output index)`` of each input, and its outputs.

    ``path``: the layer's name in a flattened graph (``outer/inner``); empty for a
    layer of the model itself, named by ``layer.name``.
    """

    layer: keras.layers.Layer
    inputs: tuple
    output_shapes: tuple  # one shape per output tensor, batch axis included
    path: str = ""

    @property
    def name(self) -> str:
        return self.path or self.layer.name


@dataclass(frozen=True)
class Graph:
    """Per layer name the ``(producer, output index)`` of its inputs; the model's ends."""

    sources: dict
    inputs: tuple  # producer of each model input, in ``model.inputs`` order
    outputs: tuple  # ``(layer name, output index)`` of each model output


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


def _histories(value) -> list:
    """``(layer name, output index)`` of each ``[layer, node, index]`` in a config's
    ``input_layers`` / ``output_layers`` (one triple, or lists and dicts of them)."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str):
        return [(value[0], int(value[2]))]
    items = value.values() if isinstance(value, dict) else value
    return [history for item in items for history in _histories(item)]


def read_graph(model) -> Graph:
    """The ``Graph`` of a functional or sequential ``model``; any other raises ``ValueError``."""
    if isinstance(model, keras.Sequential):
        names = [MODEL_INPUT] + [layer.name for layer in model.layers]
        sources = {name: [(previous, 0)] for previous, name in zip(names[:-1], names[1:],
                                                                    strict=True)}
        return Graph(sources, (MODEL_INPUT,), ((names[-1], 0),))
    config = model.get_config() if isinstance(model, keras.Model) else {}
    if "layers" not in (config or {}):
        raise ValueError(f"{model.name!r} is not a functional or sequential model; its layer "
                         f"graph is unknown. Received: {type(model).__name__}.")
    sources = {}
    for entry in config["layers"]:
        nodes = entry["inbound_nodes"]
        if len(nodes) > 1:
            raise ValueError(f"layer {entry['name']!r} is called {len(nodes)} times in "
                             f"{model.name!r}; only layers called once can be followed.")
        sources[entry["name"]] = _tensor_sources(nodes[0]) if nodes else []
    return Graph(sources, tuple(name for name, _ in _histories(config["input_layers"])),
                 tuple(_histories(config["output_layers"])))


def output_shapes(layer) -> tuple:
    """The shape of each output tensor of ``layer``'s call, batch axis included."""
    return tuple(tuple(tensor.shape) for tensor in keras.tree.flatten(layer.output))


def layer_calls(model) -> list[LayerCall]:
    """One ``LayerCall`` per layer of ``model``, in ``model.layers`` (topological) order."""
    sources = read_graph(model).sources
    return [LayerCall(layer, tuple(sources[layer.name]), output_shapes(layer))
            for layer in model.layers]


def nested_graph(layer):
    """The ``Graph`` of a functional or sequential model used as a layer, else None."""
    if not isinstance(layer, keras.Model):
        return None
    try:
        return read_graph(layer)
    except (ValueError, NotImplementedError):  # a subclassed model: one opaque layer
        return None


def all_layer_calls(model) -> list[LayerCall]:
    """``layer_calls`` with each nested model replaced by its own layers, in order.

    Their ``path`` is ``outer/inner``; their inputs name the outer tensors the nested
    model is called on (its input layers are left out), and what reads the nested
    model's outputs reads the inner layers that make them.
    """
    return _flattened(model, read_graph(model), prefix="", feeds={})


def _flattened(model, graph: Graph, *, prefix: str, feeds: dict) -> list[LayerCall]:
    """``feeds``: this model's input sources -> the flattened graph's sources."""
    renamed = dict(feeds)  # (this model's layer, index) -> (flattened path, index)
    calls = []
    for layer in model.layers:
        own = graph.sources[layer.name]
        if prefix and not own and layer.name in graph.inputs:
            continue  # a nested model's input layer: its tensor is the outer one
        inputs = tuple(renamed.get(source, (prefix + source[0], source[1])) for source in own)
        inner = nested_graph(layer)
        if inner is None:
            calls.append(LayerCall(layer, inputs, output_shapes(layer), prefix + layer.name))
            continue
        path = prefix + layer.name + SEPARATOR
        entry = {(name, 0): source for name, source in zip(inner.inputs, inputs, strict=True)}
        calls.extend(_flattened(layer, inner, prefix=path, feeds=entry))
        for index, (name, out) in enumerate(inner.outputs):
            renamed[(layer.name, index)] = entry.get((name, out), (path + name, out))
    return calls


def walk_layers(model, *, prefix: str = "") -> Iterator[tuple]:
    """``(path, layer)`` of every layer, a nested model followed by its own layers."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, prefix=prefix + layer.name + SEPARATOR)


def find_layer(model, name: str) -> tuple:
    """``(path, layer)`` of the layer ``name``: a path (``inception_v3/conv2d``), a
    top-level name, or a nested layer's own name when only one layer has it."""
    paths = dict(walk_layers(model))
    matches = [name] if name in paths else [
        path for path in paths if path.rsplit(SEPARATOR, 1)[-1] == name]
    if len(matches) == 1:
        return matches[0], paths[matches[0]]
    if matches:
        raise ValueError(f"{len(matches)} layers of {model.name!r} are named {name!r}: "
                         f"{', '.join(matches)}. Name one by its path.")
    example = next((path for path, layer in paths.items() if SEPARATOR in path and
                    not isinstance(layer, keras.layers.InputLayer)), None)
    hint = f" Layers of nested models are named by path, e.g. {example!r}." if example else ""
    raise ValueError(f"{model.name!r} has no layer {name!r}. Its layers: "
                     f"{', '.join(layer.name for layer in model.layers)}.{hint}")


def input_tensors(model, layer_name: str):
    """The tensor (or list of them) of ``model``'s graph that its layer ``layer_name`` is
    called on."""
    tensors = [model.inputs[0] if producer == MODEL_INPUT
               else keras.tree.flatten(model.get_layer(producer).output)[index]
               for producer, index in read_graph(model).sources[layer_name]]
    return tensors[0] if len(tensors) == 1 else tensors


def layer_probe(model, path: str):
    """``images -> the output of the layer at path`` (call it with ``training=False``).

    A nested layer's output lives in its own model's graph, so the probe runs the outer
    model up to the nested model's input, then the nested model up to the layer.
    """
    head, _, rest = path.partition(SEPARATOR)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    if not rest:
        return keras.Model(inputs, model.get_layer(head).output)
    feed = keras.Model(inputs, input_tensors(model, head))
    inner = layer_probe(model.get_layer(head), rest)
    return lambda images, **options: inner(feed(images, **options), **options)
