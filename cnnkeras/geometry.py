"""The geometry of sliding windows: output sizes, tiling, and the errors builders raise.

The bottom floor of cnnkeras: layers, architectures and the inspection reports
import it, and it imports nothing from cnnkeras (nor TensorFlow or Keras), so a
search can check a candidate's sizes before any layer is built.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

Padding = Union[int, str]  # zeros on each side, "valid" or "same"
IntOrSeq = Union[int, Sequence[int]]  # one value for every block, or one per block
StrOrSeq = Union[str, Sequence[str]]


class GeometryError(ValueError):
    """A kernel, stride or padding that does not fit the feature map it is applied to."""


def _zeros_each_side(padding: Padding) -> Optional[int]:
    """``padding`` as zeros on each side (``"valid"``: 0), or None for ``"same"``."""
    mode = padding.lower() if isinstance(padding, str) else None
    if mode in ("same", "valid"):
        return None if mode == "same" else 0
    if isinstance(padding, int) and mode is None and padding >= 0:
        return padding
    raise ValueError(
        f"padding must be an int >= 0, 'valid' or 'same'. Received: padding={padding!r}"
    )


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
    for label, value in (("input_size", input_size), ("kernel_size", kernel_size),
                         ("stride", stride), ("dilation", dilation)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer. Received: {label}={value!r}")
    pad = _zeros_each_side(padding)
    if pad is None:
        return math.ceil(input_size / stride)
    span = input_size - (dilation * (kernel_size - 1) + 1) + 2 * pad  # W - F + 2P
    size = span // stride + 1
    if size < 1:
        raise GeometryError(
            f"kernel_size={kernel_size} (dilation {dilation}) does not fit a {input_size}-wide "
            f"input with padding={padding!r} and stride={stride} "
            f"(output would be {size}). Received: input_size={input_size}, "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding!r}, "
            f"dilation={dilation}."
        )
    if strict and span % stride:
        raise GeometryError(
            f"kernel_size={kernel_size}, stride={stride}, padding={padding!r} does not tile a "
            f"{input_size}-wide input evenly: (W - F + 2P) = {span} is not a multiple of "
            f"{stride} (remainder {span % stride}), so the last {span % stride} row(s)/column(s) "
            f"are never seen and the output is rounded down to {size}."
        )
    return size


def tiling_remainder(input_size: int, kernel_size: int, stride: int = 1, padding: Padding = 0,
                     dilation: int = 1) -> int:
    """How many input rows/columns the last window step leaves unseen: (W - F + 2P) mod S.

    Always 0 for ``"same"`` padding, which pads as much as the stride needs.
    """
    output_size(input_size, kernel_size, stride, padding, dilation)  # validates
    pad = _zeros_each_side(padding)
    if pad is None:
        return 0
    return (input_size - dilation * (kernel_size - 1) - 1 + 2 * pad) % stride


def tiles_evenly(input_size: int, kernel_size: int, stride: int = 1, padding: Padding = 0,
                 dilation: int = 1) -> bool:
    """Whether the windows cover the padded input exactly (``tiling_remainder`` is 0)."""
    return tiling_remainder(input_size, kernel_size, stride, padding, dilation) == 0


def output_shape(sizes: Sequence[int], kernel_size: int, stride: int = 1, padding: Padding = 0,
                 dilation: int = 1, *, layer: str = "layer") -> tuple[int, ...]:
    """``output_size`` along each of ``sizes`` (spatial axes), the layer's name in any error."""
    try:
        return tuple(output_size(int(s), kernel_size, stride, padding, dilation) for s in sizes)
    except ValueError as err:  # a GeometryError stays a GeometryError
        shown = "x".join(str(s) for s in sizes)
        raise type(err)(f"{layer}: input {shown}: {err}") from None


def output_shape_2d(shape: Sequence[int], kernel_size: int, stride: int = 1,
                    padding: Padding = 0, dilation: int = 1, *,
                    layer: str = "layer") -> tuple[int, int]:
    """``output_shape`` over the height and width of ``shape`` (h, w, ...)."""
    return output_shape(tuple(shape[:2]), kernel_size, stride, padding, dilation, layer=layer)


# --- walking a stack of windows --------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """One sliding-window layer in a size walk: its name, kernel, stride and padding."""

    layer: str
    kernel: int
    stride: int = 1
    padding: Padding = 0


def check_geometry(input_shape: Sequence[int], windows: Iterable[Window]) -> tuple[int, ...]:
    """Walk the (height, width) of ``input_shape`` through ``windows``; the last map's size.

    The first window that does not fit raises ``GeometryError`` naming its layer, so a
    builder (or a search, before building anything) learns which layer is too large.
    """
    shape = tuple(input_shape[:2])
    for window in windows:
        shape = output_shape(shape, window.kernel, window.stride, window.padding,
                             layer=window.layer)
    return shape


# --- options given once or once per block ----------------------------------------------------

def per_block(value, count: int, label: str, *, unit: str = "conv block") -> tuple:
    """Broadcast a scalar option to one value per block, or check a sequence's length."""
    if isinstance(value, (str, int, float)):
        return (value,) * count
    value = tuple(value)
    if len(value) != count:
        raise ValueError(
            f"{label} needs one value per {unit} ({count}). Received: {label}={value!r}"
        )
    return value


def per_block_options(blocks: IntOrSeq, label: str = "filters", **options) -> tuple[tuple, dict]:
    """``blocks`` (the option that sets the block count) as a tuple, the others broadcast."""
    blocks = (blocks,) if isinstance(blocks, int) else tuple(blocks)
    if not blocks:
        raise ValueError(f"{label} needs at least one conv block. Received: {label}=()")
    return blocks, {key: per_block(value, len(blocks), key) for key, value in options.items()}


def positive_int(value, label: str, owner: str) -> int:
    """``value`` if it is a positive integer; else a ``ValueError`` starting with ``owner``."""
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"{owner}: {label} must be a positive integer. Received: {label}={value!r}"
        )
    return int(value)


def positive_ints(value, count: int, label: str, owner: str) -> tuple[int, ...]:
    """An int repeated ``count`` times, or a sequence of ``count`` positive ints, as a tuple.

    ``owner`` (a layer or builder) starts the error, e.g. ``NNConv2D: strides must be ...``.
    """
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * count
    if len(items) != count or not all(isinstance(v, numbers.Integral) and v >= 1
                                      for v in items):
        raise ValueError(
            f"{owner}: {label} must be a positive integer or {count} positive integers. "
            f"Received: {label}={value!r}"
        )
    return tuple(int(v) for v in items)
