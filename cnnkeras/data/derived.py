"""Datasets derived from real digit images: moving-digit clips and per-pixel masks.

Two spec forms wrap any other spec (``moving:idx:DIR``, ``segmentation:digits``,
``moving:mnist``, ...). They transform its batched splits (float32 pixels in [0, 255]):

- ``moving:SPEC``: clips of ``FRAMES`` frames at the image size, in the manner
  of the moving-MNIST set. Each real image of SPEC is shrunk to half size and
  moves across the frame from a seeded start with a seeded velocity (1 to 3
  pixels a frame per axis), bouncing off the edges. The pixels are the real
  digit's; the motion is synthetic. The label stays the image's label.
- ``segmentation:SPEC``: an ``(h, w)`` integer mask per image, derived from the
  image's own pixels: class 0 ("background") where the pixel is below half
  intensity and 1 + label where it is at or above. The masks are thresholded
  from real pixels, not annotated by hand, and suit single-object grey images
  such as digits.

Both are deterministic given the split plan's seed.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from cnnkeras.data.facts import short_hash
from cnnkeras.data.specs import DERIVED_FORMS

FRAMES = 8
MAX_SPEED = 3
THRESHOLD = 255 / 2  # half intensity, on the pipeline's [0, 255] pixels
SPEC_FORMS = DERIVED_FORMS


def segmentation_masks(images, labels, threshold: float = THRESHOLD):
    """``(B, h, w)`` masks: 1 + label where the mean over channels >= threshold, else 0."""
    foreground = tf.reduce_mean(images, axis=-1) >= threshold
    classes = tf.cast(labels, tf.int64)[:, None, None] + 1
    return tf.where(foreground, classes, tf.zeros_like(classes))


def bounce(start, velocity, steps: int, span):
    """Positions ``(..., steps)`` of a point moving in [0, span] that reflects off both ends."""
    times = tf.range(steps, dtype=start.dtype)
    unfolded = start[..., None] + velocity[..., None] * times
    period = tf.maximum(2 * span, 1)
    folded = tf.math.floormod(unfolded, period)
    return span - tf.abs(folded - span)


def place(sprites, rows, cols, size):
    """Frames ``(B, T, H, W, C)`` with each sprite ``(B, h, w, C)`` at top-left (rows, cols).

    ``rows`` and ``cols`` are ``(B, T)`` integer offsets; pixels outside the frame are dropped.
    """
    height, width = size
    shape = tf.shape(sprites)

    def lookup(offsets, extent, sprite_extent):
        index = tf.range(extent)[None, None, :] - tf.cast(offsets, tf.int32)[:, :, None]
        inside = (index >= 0) & (index < sprite_extent)
        return tf.clip_by_value(index, 0, sprite_extent - 1), tf.cast(inside, sprites.dtype)

    row_index, row_inside = lookup(rows, height, shape[1])
    col_index, col_inside = lookup(cols, width, shape[2])
    frames = tf.gather(sprites, row_index, axis=1, batch_dims=1)  # (B, T, H, w, C)
    frames = tf.gather(frames, col_index, axis=3, batch_dims=2)  # (B, T, H, W, C)
    return frames * row_inside[:, :, :, None, None] * col_inside[:, :, None, :, None]


def random_paths(batch, frames: int, spans, seed):
    """Seeded ``(rows, cols)``, each ``(B, frames)``, of bouncing paths within ``spans``."""
    paths = []
    for axis, span in enumerate(spans):
        axis_seed = seed + tf.constant([0, 7919], tf.int64) * axis
        start = tf.random.stateless_uniform([batch], axis_seed, 0, span + 1, tf.int32)
        speed = tf.random.stateless_uniform([batch], axis_seed + 1, 1, MAX_SPEED + 1, tf.int32)
        sign = tf.random.stateless_uniform([batch], axis_seed + 2, 0, 2, tf.int32) * 2 - 1
        paths.append(bounce(start, speed * sign, frames, tf.constant(span, tf.int32)))
    return paths


def moving_clips(images, seed, frames: int = FRAMES):
    """``(B, frames, H, W, C)`` clips of each image, shrunk to half size, moving in the frame."""
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None or min(height, width) < 4:
        raise ValueError(f"moving clips need images of known size at least 4x4. "
                         f"Received: image shape {tuple(images.shape[1:])}")
    sprites = tf.nn.avg_pool2d(images, 2, 2, "VALID")
    spans = (height - sprites.shape[1], width - sprites.shape[2])
    rows, cols = random_paths(tf.shape(images)[0], frames, spans, seed)
    return place(sprites, rows, cols, (height, width))


def with_batch_seeds(dataset: tf.data.Dataset, fn, seed: int, salt: int) -> tf.data.Dataset:
    """Map ``fn(images, labels, seed_pair)`` over batches; batch i of a split gets its own seed."""
    def mapped(index, batch):
        images, labels = batch
        pair = tf.stack([tf.constant(seed, tf.int64), tf.constant(salt << 32, tf.int64) + index])
        return fn(images, labels, pair)

    return dataset.enumerate().map(mapped, num_parallel_calls=tf.data.AUTOTUNE)


TRANSFORMS = {
    "moving": lambda images, labels, pair: (moving_clips(images, pair), labels),
    "segmentation": lambda images, labels, pair: (images, segmentation_masks(images, labels)),
}


def apply(kind: str, datasets, *, seed: int):
    """``datasets`` (a ``cnnkeras.data.Datasets``) transformed into the ``kind:`` form."""
    if kind not in TRANSFORMS:
        raise ValueError(f"Unknown derived dataset {kind!r}. Valid: {', '.join(SPEC_FORMS)}.")
    splits = {
        name: with_batch_seeds(getattr(datasets, name), TRANSFORMS[kind], seed, salt)
        .prefetch(tf.data.AUTOTUNE)
        for salt, name in enumerate(("train", "validation", "test"))
    }
    if kind == "moving":
        extra = {"input_shape": (FRAMES, *datasets.input_shape)}
    else:
        extra = {"class_names": ("background", *datasets.class_names)}
    facts = describe(kind, datasets.facts) if datasets.facts else None
    return dataclasses.replace(datasets, spec=f"{kind}:{datasets.spec}", facts=facts, **extra,
                               **splits)


def describe(kind: str, facts):
    """The ``DatasetFacts`` of ``kind:SPEC`` from SPEC's: name, digest, example or label shape."""
    if kind not in TRANSFORMS:
        raise ValueError(f"Unknown derived dataset {kind!r}. Valid: {', '.join(SPEC_FORMS)}.")
    extra = ({"shape": (FRAMES, *facts.shape)} if kind == "moving"
             else {"label_shape": tuple(facts.shape[:2])})  # segmentation: a mask per image
    return dataclasses.replace(facts, name=f"{kind}:{facts.name}",
                               digest=short_hash(kind, facts.digest), **extra)
