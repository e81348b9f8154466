"""From unbatched source splits to model input: fit to size, cache, shuffle, batch, cast."""

from __future__ import annotations

import tensorflow as tf

from cnnkeras.data.images import fit_image

SHUFFLE_BUFFER = 10_000


def to_float(images, labels):
    """uint8 [0, 255] -> float32 [0, 255]: cast, not scaled (every model scales its own
    pixels, ``cnnkeras.architectures.blocks``)."""
    return tf.cast(images, tf.float32), labels


def batched(dataset: tf.data.Dataset, *, size, channels, fit, batch_size, shuffle_seed=None):
    """The input pipeline for one split.

    Images are fitted to ``size`` and cached as uint8 (a quarter of float32's memory),
    shuffled each epoch when ``shuffle_seed`` is given, batched at the global batch size,
    cast to float32 pixels in [0, 255] and prefetched. Auto-sharding is by data, which
    works for in-memory and file-backed sources alike under a multi-worker strategy.
    """
    dataset = dataset.map(
        lambda x, y: (fit_image(x, size=size, channels=channels, fit=fit), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
