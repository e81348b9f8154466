"""One picture: read from a file (``load_image``) and fitted to a model's input (``fit_image``).

The training pipeline, ``cnnkeras predict`` and the feature-map pictures all see an
image through these two, so a picture is prepared the same way wherever it goes.
Any picture PIL opens is accepted: camera orientation (EXIF) is applied, and
grayscale, palette, CMYK, 16-bit and transparent images are converted to RGB
(transparent areas over white).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_image(path) -> np.ndarray:
    """An image file as an RGB ``uint8`` array (H, W, 3); unreadable files raise ValueError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image {str(path)!r} does not exist.")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read {str(path)!r} as an image: {err}") from None
    return np.asarray(to_rgb(image), dtype=np.uint8)


def to_rgb(image):
    """PIL image of any mode -> RGB; transparency is composited over white."""
    from PIL import Image

    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") and values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def fit_image(image, *, size: tuple, channels: int, fit: str):
    """Convert channels, then resize (or zero-pad/crop centrally) to ``size``; uint8 out.

    ``image``: (h, w, channels) pixels in [0, 255]; the training pipeline maps it over
    every example, ``predict`` and the feature-map pictures over one.
    """
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    have = image.shape[-1]
    if have == 3 and channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    elif have == 1 and channels == 3:
        image = tf.image.grayscale_to_rgb(image)
    static = tuple(image.shape[:2])
    if static != tuple(size):
        if fit == "pad":
            image = tf.image.resize_with_crop_or_pad(image, size[0], size[1])
        else:
            image = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(image, tf.float32)), 0, 255), tf.uint8)
