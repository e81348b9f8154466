"""Cached bottleneck features: the base's pooled output, computed once and kept on disk.

The classic retraining recipe: one forward pass of the frozen base over every
image, the features saved, and the new head trained on them for as many epochs
as wanted at almost no cost. The trade-off is that augmentation cannot apply
(it would change the features), so this path trains the head on the images as
they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf


def file_fingerprint(path: str) -> str:
    """SHA-1 of a file's bytes, so a changed weights file is a new cache entry."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(**identity) -> str:
    """A short stable name for everything that determines the features."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def compute(extract: Callable, dataset: tf.data.Dataset, width: int):
    """Features (``width`` each) and labels of a batched (image, label) dataset, in one pass.

    ``extract``: images -> pooled features (``model.forward`` of the feature extractor).
    """
    features, labels = [], []
    for images, batch_labels in dataset:
        features.append(np.asarray(extract(images), dtype=np.float32))
        labels.append(batch_labels.numpy())
    if not features:
        return np.zeros((0, width), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(features), np.concatenate(labels).astype(np.int64)


def cached(extract: Callable, dataset: tf.data.Dataset, path: Path, *, width: int):
    """``(features, labels, loaded)``: read from ``path`` if present, else computed and saved.

    The file is written under a temporary name and renamed, so an interrupted run
    leaves no half-written cache behind.
    """
    path = Path(path)
    if path.is_file():
        with np.load(path) as saved:
            return saved["features"], saved["labels"], True
    features, labels = compute(extract, dataset, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(temporary, features=features, labels=labels)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return features, labels, False
