"""Where examples come from: one loader per kind of dataset spec.

Each loader returns a ``Source``: unbatched ``tf.data`` splits of ``(image,
label)`` with pixel values in [0, 255], plus class names. The pipeline in
``cnnkeras.data.pipeline`` turns a source into batched model input.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from cnnkeras import network
from cnnkeras.data.idx import find_idx_pairs, read_idx_pair

log = logging.getLogger(__name__)


class DataWarning(UserWarning):
    """A file in a dataset was skipped; the message names it and says why."""


@dataclass(frozen=True)
class Source:
    """Unbatched splits of (image in [0, 255], integer label)."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    sizes: dict
    class_names: tuple
    channels: int
    skipped_files: tuple = field(default=())

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class SplitPlan:
    """How to carve train/validation/test out of a source with fewer splits."""

    validation_fraction: float
    test_fraction: float
    seed: int
    limit: Optional[int] = None


def split_indices(labels: np.ndarray, fractions: tuple, seed: int) -> list:
    """Seeded, stratified index split of ``labels`` into len(fractions)+1 parts."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    parts = []
    rest, rest_labels = indices, labels
    remaining = 1.0
    for fraction in fractions:
        if fraction <= 0:
            parts.append(np.array([], dtype=int))
            continue
        stratify = rest_labels if np.bincount(rest_labels).min() >= 2 else None
        rest, taken, rest_labels, _ = train_test_split(
            rest, rest_labels, test_size=fraction / remaining, random_state=seed,
            stratify=stratify,
        )
        parts.append(np.sort(taken))
        remaining -= fraction
    return [np.sort(rest)] + parts


def from_arrays(images, labels, class_names, plan: SplitPlan, *, test=None) -> Source:
    """A source from in-memory arrays; ``test`` is a given (images, labels) test split."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    labels = np.asarray(labels).astype("int64")
    fractions = (plan.validation_fraction,) if test is not None else (
        plan.validation_fraction, plan.test_fraction)
    parts = split_indices(labels, fractions, plan.seed)
    splits = [(images[p], labels[p]) for p in parts]
    if test is not None:
        test_images = np.asarray(test[0])
        splits.append((test_images[..., None] if test_images.ndim == 3 else test_images,
                       np.asarray(test[1]).astype("int64")))
    if plan.limit:
        splits = [(x[: plan.limit], y[: plan.limit]) for x, y in splits]
    datasets = [tf.data.Dataset.from_tensor_slices(split) for split in splits]
    return Source(
        *datasets,
        sizes={name: len(y)
               for name, (_, y) in zip(("train", "validation", "test"), splits, strict=True)},
        class_names=tuple(class_names),
        channels=int(images.shape[-1]),
    )


def load_digits(plan: SplitPlan) -> Source:
    """scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, 17 grey levels."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images * (255.0 / 16.0)).astype("float32")
    return from_arrays(images, digits.target, [str(i) for i in range(10)], plan)


def load_idx(directory: str, plan: SplitPlan) -> Source:
    """MNIST-format IDX files. ``train``+``t10k`` pairs are used as given; one pair is split."""
    pairs = find_idx_pairs(Path(directory).expanduser())
    if "train" in pairs and "t10k" in pairs:
        images, labels = read_idx_pair(*pairs["train"])
        test = read_idx_pair(*pairs["t10k"])
    else:
        images, labels = read_idx_pair(*pairs[sorted(pairs)[0]])
        test = None
    names = [str(i) for i in range(int(labels.max()) + 1)]
    return from_arrays(images, labels, names, plan, test=test)


def tfds_split_names(info, plan: SplitPlan) -> tuple:
    """tfds split strings for train/validation/test, slicing ``train`` where a split is missing."""
    val = round(plan.validation_fraction * 100)
    if "test" in info.splits:
        test = "test"
        train_name = "train"
    else:
        cut = 100 - round(plan.test_fraction * 100)
        test = f"train[{cut}%:]"
        train_name = f"train[:{cut}%]"
        if "validation" not in info.splits:
            return (f"train[:{cut - val}%]", f"train[{cut - val}%:{cut}%]", test)
    if "validation" in info.splits:
        return (train_name, "validation", test)
    return (f"train[:{100 - val}%]", f"train[{100 - val}%:]", test)


def load_tfds(name: str, plan: SplitPlan, data_dir: Optional[str]) -> Source:
    """A tensorflow-datasets dataset (downloaded on first use where there is internet)."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(name, data_dir=data_dir)
        split_names = tfds_split_names(builder.info, plan)
        datasets, info = tfds.load(
            name, split=list(split_names), data_dir=data_dir, as_supervised=True,
            with_info=True, shuffle_files=False,
        )
    except Exception as err:  # tfds raises many kinds; network_cause tells them apart
        raise network.download_error(
            f"Could not load tfds dataset {name!r} (data_dir={data_dir!r})", err,
            instead="use idx:DIR or folder:DIR with files you have") from err
    if plan.limit:
        datasets = [ds.take(plan.limit) for ds in datasets]
    sizes = {}
    for key, ds, split in zip(("train", "validation", "test"), datasets, split_names, strict=True):
        count = int(ds.cardinality())
        sizes[key] = count if count >= 0 else info.splits[split].num_examples
    label = info.features["label"]
    return Source(
        *[ds.map(lambda x, y: (x, tf.cast(y, tf.int64))) for ds in datasets],
        sizes=sizes,
        class_names=tuple(label.names),
        channels=int(info.features["image"].shape[-1]),
    )


def readable_image(path: Path) -> Optional[str]:
    """None when TensorFlow decodes ``path`` as an image, else the reason it cannot."""
    try:
        tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
        return err.message.splitlines()[0] if err.message else type(err).__name__
    return None


def scan_folder(directory: Path):
    """Class names, readable files and labels, and the skipped files of a class-folder tree."""
    if not directory.is_dir():
        raise ValueError(f"Image folder {str(directory)!r} does not exist or is not a directory.")
    classes = sorted(
        p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(
            f"Image folder {str(directory)!r} needs one sub-folder per class and at least two "
            f"classes; found {len(classes)} ({', '.join(classes) or 'none'})."
        )
    paths, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        for path in sorted((directory / name).rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            reason = readable_image(path)
            if reason is None:
                paths.append(str(path))
                labels.append(label)
            else:
                skipped.append(str(path))
                warnings.warn(f"Skipping {path}: not a readable image ({reason}).", DataWarning,
                              stacklevel=2)
    if not paths:
        raise ValueError(f"Image folder {str(directory)!r} holds no readable images.")
    return classes, np.array(paths), np.array(labels, dtype="int64"), tuple(skipped)


def decode_file(path, label):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image, label


def load_folder(directory: str, plan: SplitPlan) -> Source:
    """One sub-folder per class of images; unreadable files are named in a warning and skipped."""
    classes, paths, labels, skipped = scan_folder(Path(directory).expanduser())
    parts = split_indices(labels, (plan.validation_fraction, plan.test_fraction), plan.seed)
    if plan.limit:  # a seeded sample: the files are sorted by class, so no plain prefix
        rng = np.random.default_rng(plan.seed)
        parts = [np.sort(rng.permutation(p)[: plan.limit]) for p in parts]
    datasets = [
        tf.data.Dataset.from_tensor_slices((paths[p], labels[p])).map(
            decode_file, num_parallel_calls=tf.data.AUTOTUNE)
        for p in parts
    ]
    if skipped:
        log.warning("Skipped %d unreadable file(s) in %s", len(skipped), directory)
    return Source(
        *datasets,
        sizes={name: len(p)
               for name, p in zip(("train", "validation", "test"), parts, strict=True)},
        class_names=tuple(classes),
        channels=3,
        skipped_files=skipped,
    )
