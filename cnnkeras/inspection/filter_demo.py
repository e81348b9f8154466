"""The hand-made filter demo: what a convolution does, before any training.

Three 7x7 filters (a vertical white line, a horizontal white line, all zeros)
run over scikit-learn's two bundled photos with ``tf.nn.conv2d``: each line
filter brightens the lines of its own direction, the zero filter gives black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkeras.inspection.viz import plt, save_png


def line_filters(size: int = 7, channels: int = 3) -> np.ndarray:
    """Hand-made filters (size, size, channels, 3): a vertical line, a horizontal line, zeros."""
    filters = np.zeros((size, size, channels, 3), dtype="float32")
    filters[:, size // 2, :, 0] = 1.0  # vertical white line
    filters[size // 2, :, :, 1] = 1.0  # horizontal white line
    return filters  # filter 2 stays all zero


def apply_filters(images, filters, strides: int = 1, padding: str = "SAME") -> np.ndarray:
    """``tf.nn.conv2d`` of a batch of images with the filters: one feature map per filter."""
    import tensorflow as tf

    images = np.asarray(images, dtype="float32")
    return tf.nn.conv2d(images, np.asarray(filters, "float32"), strides, padding).numpy()


def sample_photos() -> np.ndarray:
    """scikit-learn's two bundled photos (china.jpg, flower.jpg), (2, 427, 640, 3) in [0, 1]."""
    from sklearn.datasets import load_sample_image

    return np.stack([load_sample_image(name) for name in ("china.jpg", "flower.jpg")]) / 255.0


def plot_filter_demo(path, images=None) -> Path:
    """Each photo and its maps through the vertical, horizontal and zero 7x7 filters."""
    images = sample_photos() if images is None else np.asarray(images, dtype="float32")
    maps = apply_filters(images, line_filters(7, images.shape[-1]))
    titles = ("photo", "vertical line filter", "horizontal line filter", "zero filter")
    fig, axes = plt.subplots(len(images), 4, figsize=(12, 2.4 * len(images)), squeeze=False)
    for row, (image, response) in enumerate(zip(images, maps, strict=True)):
        axes[row, 0].imshow(np.clip(image, 0, 1).squeeze(), cmap="gray")
        top = max(float(response.max()), 1e-12)
        for column in range(3):
            axes[row, column + 1].imshow(response[..., column], cmap="gray", vmin=0, vmax=top)
        for column, axis in enumerate(axes[row]):
            axis.set_title(titles[column], fontsize=9)
            axis.axis("off")
    return save_png(fig, path)
