"""Convolution as one matrix multiply: the patch matrix (im2col) times the flattened kernels.

Each output position's input window becomes one column of the patch matrix; each
filter becomes one row of the weight matrix; their product is every filter at
every position. AlexNet's first layer on a 227x227x3 image: 96 x 363 weights
times a 363 x 3025 patch matrix.
"""

from __future__ import annotations

import math

import numpy as np

from cnnkeras.geometry import Padding, output_size, positive_ints


def _pads(size: int, kernel: int, stride: int, padding) -> tuple[int, int]:
    if isinstance(padding, int):
        return padding, padding
    if padding.lower() == "valid":
        return 0, 0
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2  # TensorFlow puts the odd one after


def im2col(image, kernel_size, strides=1, padding: Padding = "valid"):
    """The patch matrix of one HxWxC image: (kh*kw*C, out_h*out_w), and (out_h, out_w).

    Column p is the window under output position p, flattened in (kh, kw, C)
    order, the order of ``kernel.reshape(-1, filters)``. AlexNet's conv1 on
    227x227x3 gives a 363 x 3025 matrix.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"im2col takes one HxWxC image. Received shape {image.shape}.")
    kh, kw = positive_ints(kernel_size, 2, "kernel_size", "im2col")
    sh, sw = positive_ints(strides, 2, "strides", "im2col")
    if not (isinstance(padding, int) or str(padding).lower() in ("valid", "same")):
        raise ValueError(f"padding must be an int, 'valid' or 'same'. Received: {padding!r}")
    axes = list(zip(image.shape[:2], (kh, kw), (sh, sw), strict=True))
    pads = [_pads(n, k, s, padding) for n, k, s in axes]
    for (n, k, s), (before, after) in zip(axes, pads, strict=True):
        output_size(n + before + after, k, s)  # a kernel that does not fit raises
    padded = np.pad(image, (pads[0], pads[1], (0, 0)))
    view = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(0, 1))[::sh, ::sw]
    out_h, out_w = view.shape[:2]
    patches = view.transpose(0, 1, 3, 4, 2).reshape(out_h * out_w, -1)
    return patches.T, (out_h, out_w)


def conv2d_im2col(x, kernel, strides=1, padding: Padding = "valid") -> np.ndarray:
    """``tf.nn.conv2d`` (NHWC, HWIO) as one matrix product of the kernel and all patches."""
    x, kernel = np.asarray(x), np.asarray(kernel)
    single = x.ndim == 3
    batch = x[None] if single else x
    if kernel.ndim != 4 or kernel.shape[2] != batch.shape[-1]:
        raise ValueError(f"kernel must be (kh, kw, {batch.shape[-1]}, filters) for this input. "
                         f"Received: kernel shape {kernel.shape}, input shape {x.shape}")
    columns = [im2col(image, kernel.shape[:2], strides, padding) for image in batch]
    (out_h, out_w) = columns[0][1]
    patches = np.concatenate([c[0] for c in columns], axis=1)  # (K, N * out_h * out_w)
    weights = kernel.reshape(-1, kernel.shape[-1]).T  # (filters, K)
    out = (weights @ patches).reshape(kernel.shape[-1], len(batch), out_h, out_w)
    out = out.transpose(1, 2, 3, 0)
    return out[0] if single else out
