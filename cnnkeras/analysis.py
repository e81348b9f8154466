"""The arithmetic a CNN course teaches: output sizes, and the geometry checks built on them."""

from __future__ import annotations

import math
from typing import Sequence, Union

Padding = Union[int, str]


class GeometryError(ValueError):
    """A kernel, stride or padding that does not fit the feature map it is applied to."""


def output_size(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: Padding = 0,
    dilation: int = 1,
) -> int:
    """Spatial output size of a convolution or pooling window, as TensorFlow computes it.

    ``padding`` is a number of zeros on each side, ``"valid"`` (0) or ``"same"``
    (output ceil(W/S), whatever the kernel). The formula is (W - F + 2P)/S + 1
    with F the dilated kernel size d*(F-1)+1, rounded down.
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
