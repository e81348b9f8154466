"""The reports a CNN course asks of a model: a per-layer table and its memory.

``layer_table``: per layer its kernel, stride and padding (conv and pooling
layers), output shape, parameters, receptive field and jump, FLOPs and
activations; ``model_flops`` sums the FLOPs; ``parameter_counts`` splits the
parameters into trainable and fixed; ``memory_report``: the bytes for inference
and for training one mini-batch. The model's graph is
read through public Keras (``cnnkeras.inspection.graph``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from cnnkeras.geometry import positive_ints
from cnnkeras.inspection.graph import MODEL_INPUT, all_layer_calls

# --- per-layer table: shapes, parameters, receptive field, FLOPs, activations ---------------

@dataclass(frozen=True)
class LayerRow:
    """One layer of ``layer_table``; every size is per image (no batch axis).

    ``receptive_field``: input pixels (per spatial axis, padding included, so it
    can exceed the image) that one output unit depends on, dilation included;
    ``jump``: input pixels between neighbouring output units. After ``Flatten``
    or global pooling the field is the whole image and ``jump`` is ``None``; both
    are ``None`` for a layer the table cannot follow (e.g. a transposed conv).
    ``flops``: 2 x multiply-adds of the layer's kernels (convolutions, dense
    layers); element-wise layers (activations, BN, pooling, additions, LRN)
    count 0. ``activations``: values in the output. ``kernel``, ``stride``,
    ``dilation`` (per spatial axis) and ``padding`` (``"valid"``, ``"same"``, ...):
    the window of a convolution or pooling layer, what its output size
    (W - F + 2P) / S + 1 is computed from; ``None`` for any other layer.
    ``preprocessing``: a ``Rescaling`` of the model's input (every cnnkeras model's
    ``pixels``): its output is the input image in other units, so the activation totals
    and ``memory_report`` count the image once, as the input row, and skip this row.
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    receptive_field: Optional[tuple]
    jump: Optional[tuple]
    flops: int
    activations: int
    kernel: Optional[tuple] = None
    stride: Optional[tuple] = None
    dilation: Optional[tuple] = None
    padding: Optional[str] = None
    preprocessing: bool = False


def _window(layer, in_shape, out_shape):
    """(kernel, stride, dilation) per spatial axis of a sliding-window layer, else None."""
    rank = len(in_shape) - 2
    if rank < 1 or "Transpose" in type(layer).__name__:
        return None
    pool = getattr(layer, "pool_size", None)
    if isinstance(pool, (tuple, list)) and len(pool) == rank:
        strides = getattr(layer, "strides", None) or pool
        return tuple(pool), positive_ints(strides, rank, "strides", layer.name), (1,) * rank
    kernel = getattr(layer, "kernel_size", None)
    if kernel is not None:
        return tuple(positive_ints(getattr(layer, label, 1), rank, label, layer.name)
                     for label in ("kernel_size", "strides", "dilation_rate"))
    if isinstance(pool, int) and tuple(in_shape[1:-1]) != tuple(out_shape[1:-1]):
        return (pool,) * rank, (pool,) * rank, (1,) * rank
    return None


def _window_settings(layer, in_shape, out_shape):
    """(kernel, stride, dilation, padding) of a convolution or pooling layer, else None.

    Read from the layer's public attributes; a window layer without ``padding``
    (LeNet's subsampling and C3) pads nothing, Keras' default ``"valid"``.
    """
    rank = len(in_shape) - 2
    if rank >= 1 and "Transpose" in type(layer).__name__:
        window = tuple(positive_ints(getattr(layer, label, 1), rank, label, layer.name)
                       for label in ("kernel_size", "strides", "dilation_rate"))
    else:
        window = _window(layer, in_shape, out_shape)
    if window is None:
        return None
    padding = getattr(layer, "padding", "valid")
    return (*window, padding if isinstance(padding, str) else None)


def _geometry(layer, inputs, in_shapes, out_shape, image: tuple):
    """Receptive field and jump of ``layer``'s output from those of its inputs."""
    rank_out = len(out_shape) - 2
    if not inputs:
        return (1,) * rank_out, (1,) * rank_out
    if any(g is None for g in inputs):
        return None
    rf, jump = inputs[0]
    if len(inputs) > 1:
        rf = tuple(max(axis) for axis in zip(*(g[0] for g in inputs), strict=True))
    in_shape = in_shapes[0]
    window = _window(layer, in_shape, out_shape)
    if window and jump is not None:
        kernel, stride, dilation = window
        steps = zip(rf, kernel, dilation, jump, strict=True)
        rf = tuple(r + d * (k - 1) * j for r, k, d, j in steps)
        return rf, tuple(j * s for j, s in zip(jump, stride, strict=True))
    if jump is None or tuple(in_shape[1:-1]) == tuple(out_shape[1:-1]):
        return rf, jump
    if rank_out < len(in_shape) - 2:  # Flatten, global pooling: the whole image
        return image, None
    if any(word in type(layer).__name__ for word in ("Padding", "Cropping")):
        return rf, jump
    return None


def _multiply_adds(layer, in_shape, out_shape) -> int:
    custom = getattr(layer, "multiply_adds", None)
    if callable(custom):
        return int(custom(in_shape, out_shape))
    transposed = "Transpose" in type(layer).__name__
    positions = math.prod((in_shape if transposed else out_shape)[1:-1])
    total = 0
    for attribute in ("kernel", "depthwise_kernel", "pointwise_kernel"):
        weight = getattr(layer, attribute, None)
        shape = getattr(weight, "shape", None)
        if shape is not None and len(shape) >= 2:
            total += positions * math.prod(int(d) for d in shape)
    return total


def layer_table(model) -> list[LayerRow]:
    """One ``LayerRow`` per layer of a functional or sequential model, input first; a
    nested model's layers are rows named by path (``inception_v3/conv2d``)."""
    image = tuple(model.inputs[0].shape[1:-1])
    ones = (1,) * len(image)
    shapes = {(MODEL_INPUT, 0): tuple(model.inputs[0].shape)}  # a Sequential model's input
    known = {(MODEL_INPUT, 0): (ones, ones)}
    image_sources = {(MODEL_INPUT, 0)}  # the model's input tensors, as (producer, index)
    rows = []
    for call in all_layer_calls(model):
        if any(source not in known for source in call.inputs):
            raise ValueError(f"layer_table: cannot place layer {call.name!r} in the model's "
                             f"graph.")
        in_shapes = [shapes[source] for source in call.inputs]
        out_shape = call.output_shapes[0]
        if any(d is None for d in out_shape[1:]):
            raise ValueError(f"layer_table needs a fixed input size; {call.name!r} has output "
                             f"shape {out_shape}. Build the model for one input shape.")
        geometry = _geometry(call.layer, [known[source] for source in call.inputs], in_shapes,
                             out_shape, image)
        for index, shape in enumerate(call.output_shapes):
            shapes[(call.name, index)], known[(call.name, index)] = shape, geometry
        if not call.inputs:  # an input layer: its tensor is the image
            image_sources.add((call.name, 0))
        rows.append(_row(call, out_shape, geometry, in_shapes,
                         on_image=bool(call.inputs) and set(call.inputs) <= image_sources))
    if not any(row.kind == "InputLayer" for row in rows):  # Sequential: no InputLayer listed
        rows.insert(0, LayerRow("input", "InputLayer", tuple(model.inputs[0].shape[1:]), 0,
                                ones, ones, 0, math.prod(model.inputs[0].shape[1:])))
    return rows


def _row(call, out_shape: tuple, geometry, in_shapes: list, *, on_image: bool) -> LayerRow:
    layer = call.layer
    macs = _multiply_adds(layer, in_shapes[0], out_shape) if in_shapes else 0
    window = _window_settings(layer, in_shapes[0], out_shape) if in_shapes else None
    kernel, stride, dilation, padding = window or (None,) * 4
    return LayerRow(
        name=call.name, kind=type(layer).__name__, output_shape=out_shape[1:],
        params=int(layer.count_params()) if layer.built else 0,
        receptive_field=geometry[0] if geometry else None,
        jump=geometry[1] if geometry else None, flops=2 * macs,
        activations=math.prod(out_shape[1:]), kernel=kernel, stride=stride,
        dilation=dilation, padding=padding,
        preprocessing=on_image and type(layer).__name__ == "Rescaling",
    )


def model_flops(model) -> int:
    """FLOPs per image (2 x multiply-adds of all kernels), the sum of ``layer_table``'s."""
    return sum(row.flops for row in layer_table(model))


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, non-trainable) parameters: the weights training updates, and the fixed
    ones (LeNet-5's RBF prototypes, batch-norm statistics, a frozen base)."""
    def count(weights) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in weights)

    return count(model.trainable_weights), count(model.non_trainable_weights)


# --- memory: parameters, optimizer slots, activations --------------------------------------

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
OPTIMIZER_SLOTS = {"sgd": 0, "sgd_momentum": 1, "momentum": 1, "rmsprop": 1, "adagrad": 1,
                   "adam": 2, "adamw": 2, "nadam": 2, "adamax": 2}


@dataclass(frozen=True)
class MemoryReport:
    """Bytes a model needs, from ``memory_report``; values are counts, ``*_bytes`` bytes.

    Inference keeps the parameters and, at any moment, two consecutive layers'
    outputs (the largest such pair; the input, rescaled or not, counts as one layer).
    Training keeps the parameters, one gradient and ``optimizer_slots`` slots per trainable
    parameter, the input batch and every layer's output for the backward pass.
    These are lower bounds: frameworks add workspace and copies.
    """

    batch_size: int
    dtype: str
    bytes_per_value: int
    optimizer: str
    optimizer_slots: int
    parameters: int
    trainable_parameters: int
    input_values: int  # per image
    activation_values: int  # per image, all layer outputs
    peak_pair_values: int  # per image, the largest two consecutive layer outputs

    def _bytes(self, values: int) -> int:
        return int(values) * self.bytes_per_value

    @property
    def parameter_bytes(self) -> int:
        return self._bytes(self.parameters)

    @property
    def gradient_bytes(self) -> int:
        return self._bytes(self.trainable_parameters)

    @property
    def optimizer_bytes(self) -> int:
        return self._bytes(self.optimizer_slots * self.trainable_parameters)

    @property
    def input_bytes(self) -> int:
        return self._bytes(self.batch_size * self.input_values)

    @property
    def inference_activation_bytes(self) -> int:
        return self._bytes(self.batch_size * self.peak_pair_values)

    @property
    def training_activation_bytes(self) -> int:
        return self._bytes(self.batch_size * self.activation_values)

    @property
    def inference_bytes(self) -> int:
        return self.parameter_bytes + self.inference_activation_bytes

    @property
    def training_bytes(self) -> int:
        return (self.parameter_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.input_bytes + self.training_activation_bytes)

    def rows(self) -> list[tuple[str, int]]:
        """(label, bytes) lines for a printed report."""
        return [
            ("parameters", self.parameter_bytes),
            ("inference: activations (largest two consecutive layers)",
             self.inference_activation_bytes),
            ("inference: total", self.inference_bytes),
            ("training: gradients", self.gradient_bytes),
            (f"training: {self.optimizer} slots ({self.optimizer_slots} per parameter)",
             self.optimizer_bytes),
            ("training: input batch", self.input_bytes),
            ("training: activations (all layers)", self.training_activation_bytes),
            ("training: total", self.training_bytes),
        ]


def memory_report(model, batch_size: int = 1, dtype: str = "float32",
                  optimizer: str = "adam") -> MemoryReport:
    """Parameter, optimizer and activation memory of ``model`` for one mini-batch."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}. Received: {dtype!r}")
    if optimizer not in OPTIMIZER_SLOTS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_SLOTS)}. "
                         f"Received: {optimizer!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: {batch_size!r}")
    rows = [row for row in layer_table(model) if not row.preprocessing]
    is_input = [row.kind == "InputLayer" for row in rows]
    sizes = [row.activations for row in rows]
    pairs = [a + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)] or sizes
    trainable, _ = parameter_counts(model)
    return MemoryReport(
        batch_size=batch_size, dtype=dtype, bytes_per_value=DTYPE_BYTES[dtype],
        optimizer=optimizer, optimizer_slots=OPTIMIZER_SLOTS[optimizer],
        parameters=int(model.count_params()), trainable_parameters=int(trainable),
        input_values=sum(s for s, flag in zip(sizes, is_input, strict=True) if flag),
        activation_values=sum(s for s, flag in zip(sizes, is_input, strict=True) if not flag),
        peak_pair_values=max(pairs),
    )
