"""The arithmetic a CNN course teaches.

Output sizes and tiling; a per-layer table (shape, parameters, receptive field,
FLOPs, activations) and a model's memory for inference and training;
convolution as one matrix multiply (im2col); and ``fc_to_conv``, which turns a
dense classifier head into convolutions (from ``cnnkeras.fully_convolutional``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

Padding = Union[int, str]


class GeometryError(ValueError):
    """A kernel, stride or padding that does not fit the feature map it is applied to."""


def output_size(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
    *,
    strict: bool = False,
) -> int:
    """Spatial output size of a convolution or pooling window, as TensorFlow computes it.

    ``padding`` is a number of zeros on each side, ``"valid"`` (0) or ``"same"``
    (output ceil(W/S), whatever the kernel). The formula is (W - F + 2P)/S + 1
    with F the dilated kernel size d*(F-1)+1, rounded down: 227 with an 11x11
    stride-4 window gives 55. When (W - F + 2P) is not a multiple of S the last
    rows and columns are never seen (224 with the same window: remainder 1);
    ``tiling_remainder`` says by how much, and ``strict=True`` raises
    ``GeometryError`` instead of rounding down.
    """
    for label, value in (
        ("input_size", input_size),
        ("kernel_size", kernel_size),
        ("stride", stride),
        ("dilation", dilation),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer. Received: {label}={value!r}")
    effective = dilation * (kernel_size - 1) + 1
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "same":
            return math.ceil(input_size / stride)
        if mode != "valid":
            raise ValueError(
                f"padding must be an int >= 0, 'valid' or 'same'. Received: padding={padding!r}"
            )
        pad = 0
    elif isinstance(padding, int) and padding >= 0:
        pad = padding
    else:
        raise ValueError(
            f"padding must be an int >= 0, 'valid' or 'same'. Received: padding={padding!r}"
        )
    size = (input_size - effective + 2 * pad) // stride + 1
    if size < 1:
        raise GeometryError(
            f"kernel_size={kernel_size} (dilation {dilation}) does not fit a {input_size}-wide "
            f"input with padding={padding!r} and stride={stride} "
            f"(output would be {size}). Received: input_size={input_size}, "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding!r}, "
            f"dilation={dilation}."
        )
    remainder = (input_size - effective + 2 * pad) % stride
    if strict and remainder:
        raise GeometryError(
            f"kernel_size={kernel_size}, stride={stride}, padding={padding!r} does not tile a "
            f"{input_size}-wide input evenly: (W - F + 2P) = {input_size - effective + 2 * pad} "
            f"is not a multiple of {stride} (remainder {remainder}), so the last {remainder} "
            f"row(s)/column(s) are never seen and the output is rounded down to {size}."
        )
    return size


def output_shape_2d(
    shape: Sequence[int], kernel_size: int, stride: int = 1, padding: Padding = 0,
    dilation: int = 1, *, layer: str = "layer",
) -> tuple[int, int]:
    """``output_size`` over height and width, with the layer's name in any error."""
    try:
        return tuple(
            output_size(int(s), kernel_size, stride, padding, dilation) for s in shape[:2]
        )
    except ValueError as err:
        raise type(err)(f"{layer}: input {shape[0]}x{shape[1]}: {err}") from None


def tiling_remainder(input_size: int, kernel_size: int, stride: int = 1, padding: Padding = 0,
                     dilation: int = 1) -> int:
    """How many input rows/columns the last window step leaves unseen: (W - F + 2P) mod S.

    Always 0 for ``"same"`` padding, which pads as much as the stride needs.
    """
    output_size(input_size, kernel_size, stride, padding, dilation)  # validates
    if isinstance(padding, str):
        if padding.lower() == "same":
            return 0
        padding = 0
    return (input_size - dilation * (kernel_size - 1) - 1 + 2 * padding) % stride


def tiles_evenly(input_size: int, kernel_size: int, stride: int = 1, padding: Padding = 0,
                 dilation: int = 1) -> bool:
    """Whether the windows cover the padded input exactly (``tiling_remainder`` is 0)."""
    return tiling_remainder(input_size, kernel_size, stride, padding, dilation) == 0


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
    count 0. ``activations``: values in the output.
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    receptive_field: Optional[tuple]
    jump: Optional[tuple]
    flops: int
    activations: int


def per_axis(value, rank: int) -> tuple:
    """An int repeated ``rank`` times, or a sequence as a tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * rank


def _window(layer, in_shape, out_shape):
    """(kernel, stride, dilation) per spatial axis of a sliding-window layer, else None."""
    rank = len(in_shape) - 2
    if rank < 1 or "Transpose" in type(layer).__name__:
        return None
    pool = getattr(layer, "pool_size", None)
    if isinstance(pool, (tuple, list)) and len(pool) == rank:
        strides = getattr(layer, "strides", None) or pool
        return tuple(pool), per_axis(strides, rank), (1,) * rank
    kernel = getattr(layer, "kernel_size", None)
    if kernel is not None:
        return (per_axis(kernel, rank), per_axis(getattr(layer, "strides", 1), rank),
                per_axis(getattr(layer, "dilation_rate", 1), rank))
    if isinstance(pool, int) and tuple(in_shape[1:-1]) != tuple(out_shape[1:-1]):
        return (pool,) * rank, (pool,) * rank, (1,) * rank
    return None


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
    if hasattr(layer, "layers") and hasattr(layer, "inputs"):  # a nested model
        return model_flops(layer) // 2
    transposed = "Transpose" in type(layer).__name__
    positions = math.prod((in_shape if transposed else out_shape)[1:-1])
    total = 0
    for attribute in ("kernel", "depthwise_kernel", "pointwise_kernel"):
        weight = getattr(layer, attribute, None)
        shape = getattr(weight, "shape", None)
        if shape is not None and len(shape) >= 2:
            total += positions * math.prod(int(d) for d in shape)
    return total


def _node(layer, known):
    """The call of ``layer`` in this model: the inbound node whose inputs are all known."""
    for node in layer._inbound_nodes:
        if all(id(t) in known for t in node.input_tensors):
            return node
    raise ValueError(f"layer_table: cannot place layer {layer.name!r} in the model's graph.")


def layer_table(model) -> list[LayerRow]:
    """One ``LayerRow`` per layer of a functional or sequential model, input first."""
    image = tuple(model.inputs[0].shape[1:-1])
    known = {id(t): ((1,) * (len(t.shape) - 2), (1,) * (len(t.shape) - 2)) for t in model.inputs}
    rows = []
    for layer in model.layers:
        node = _node(layer, known)
        in_shapes = [tuple(t.shape) for t in node.input_tensors]
        out_shape = tuple(node.output_tensors[0].shape)
        if any(d is None for d in out_shape[1:]):
            raise ValueError(f"layer_table needs a fixed input size; {layer.name!r} has output "
                             f"shape {out_shape}. Build the model for one input shape.")
        inputs = [known[id(t)] for t in node.input_tensors]
        geometry = _geometry(layer, inputs, in_shapes, out_shape, image)
        for tensor in node.output_tensors:
            known[id(tensor)] = geometry
        macs = _multiply_adds(layer, in_shapes[0], out_shape) if in_shapes else 0
        rows.append(LayerRow(
            name=layer.name, kind=type(layer).__name__, output_shape=out_shape[1:],
            params=int(layer.count_params()) if layer.built else 0,
            receptive_field=geometry[0] if geometry else None,
            jump=geometry[1] if geometry else None, flops=2 * macs,
            activations=math.prod(out_shape[1:]),
        ))
    if not any(row.kind == "InputLayer" for row in rows):  # Sequential: no InputLayer listed
        ones = (1,) * len(image)
        rows.insert(0, LayerRow("input", "InputLayer", tuple(model.inputs[0].shape[1:]), 0,
                                ones, ones, 0, math.prod(model.inputs[0].shape[1:])))
    return rows


def model_flops(model) -> int:
    """FLOPs per image (2 x multiply-adds of all kernels), the sum of ``layer_table``'s."""
    return sum(row.flops for row in layer_table(model))


# --- memory: parameters, optimizer slots, activations --------------------------------------

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
OPTIMIZER_SLOTS = {"sgd": 0, "sgd_momentum": 1, "momentum": 1, "rmsprop": 1, "adagrad": 1,
                   "adam": 2, "adamw": 2, "nadam": 2, "adamax": 2}


@dataclass(frozen=True)
class MemoryReport:
    """Bytes a model needs, from ``memory_report``; values are counts, ``*_bytes`` bytes.

    Inference keeps the parameters and, at any moment, two consecutive layers'
    outputs (the largest such pair; the input counts as a layer). Training keeps
    the parameters, one gradient and ``optimizer_slots`` slots per trainable
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
    rows = layer_table(model)
    is_input = [row.kind == "InputLayer" for row in rows]
    sizes = [row.activations for row in rows]
    pairs = [a + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)] or sizes
    trainable = sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
    return MemoryReport(
        batch_size=batch_size, dtype=dtype, bytes_per_value=DTYPE_BYTES[dtype],
        optimizer=optimizer, optimizer_slots=OPTIMIZER_SLOTS[optimizer],
        parameters=int(model.count_params()), trainable_parameters=int(trainable),
        input_values=sum(s for s, flag in zip(sizes, is_input, strict=True) if flag),
        activation_values=sum(s for s, flag in zip(sizes, is_input, strict=True) if not flag),
        peak_pair_values=max(pairs),
    )


# part of this module's API, each in a module of its own:
from cnnkeras.fully_convolutional import fc_to_conv  # noqa: E402, F401
from cnnkeras.im2col import conv2d_im2col, im2col  # noqa: E402, F401
