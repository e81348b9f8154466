"""Dataset specs -> batched train/validation/test ``tf.data`` pipelines.

Specs, one string each:

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (offline everywhere).
- ``mnist``, ``fashion_mnist``, ``cifar10``, ``tf_flowers``: tensorflow-datasets.
- ``idx:DIR``: MNIST-format IDX files in DIR.
- ``folder:DIR``: one sub-folder per class of images.
- ``moving:SPEC``, ``segmentation:SPEC``: moving-digit clips or per-pixel masks
  derived from SPEC's real images (``cnnkeras.data.derived``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from cnnkeras.data.specs import SPEC_FORMS, TFDS_NAMES

if TYPE_CHECKING:
    import tensorflow as tf

    from cnnkeras.data.facts import DatasetFacts
    from cnnkeras.data.sources import Source, SplitPlan

# TensorFlow loads with the first of these names used, not with the package, so that
# `cnnkeras list` and `--help` answer at once.
LAZY = {"derived": "cnnkeras.data.derived", "images": "cnnkeras.data.images",
        "pipeline": "cnnkeras.data.pipeline",
        "sources": "cnnkeras.data.sources", "DataWarning": "cnnkeras.data.sources",
        "Source": "cnnkeras.data.sources", "SplitPlan": "cnnkeras.data.sources",
        "facts": "cnnkeras.data.facts", "DatasetFacts": "cnnkeras.data.facts",
        "describe": "cnnkeras.data.facts"}


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(LAZY[name])
    return module if module.__name__.endswith(f".{name}") else getattr(module, name)


@dataclass(frozen=True)
class Datasets:
    """Batched splits ready for ``model.fit``, and what a run records about them."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    input_shape: tuple
    class_names: tuple
    sizes: dict
    skipped_files: tuple
    spec: str
    facts: Optional[DatasetFacts] = None  # what a run records as its dataset inputs

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_source(spec: str, plan: SplitPlan, data_dir: Optional[str] = None) -> Source:
    """The unbatched splits behind a dataset spec; unknown specs raise listing the valid forms."""
    from cnnkeras.data import sources

    kind, _, argument = spec.partition(":")
    if kind == "digits" and not argument:
        return sources.load_digits(plan)
    if kind in TFDS_NAMES and not argument:
        return sources.load_tfds(kind, plan, data_dir)
    if kind == "idx" and argument:
        return sources.load_idx(argument, plan)
    if kind == "folder" and argument:
        return sources.load_folder(argument, plan)
    raise ValueError(f"Unknown dataset spec {spec!r}. Valid specs: {', '.join(SPEC_FORMS)}.")


def load(
    spec: str,
    *,
    image_size: tuple,
    channels: int,
    batch_size: int,
    plan: SplitPlan,
    data_dir: Optional[str] = None,
    fit: str = "resize",
) -> Datasets:
    """Load ``spec`` and build its pipelines at model input ``image_size`` x ``channels``.

    ``batch_size`` is the global batch size (per-replica size times replicas).
    """
    from cnnkeras.data import derived, facts, pipeline

    kind, _, inner = spec.partition(":")
    if kind in derived.TRANSFORMS and inner:  # moving:SPEC, segmentation:SPEC
        base = load(inner, image_size=image_size, channels=channels, batch_size=batch_size,
                    plan=plan, data_dir=data_dir, fit=fit)
        return derived.apply(kind, base, seed=plan.seed)
    source = load_source(spec, plan, data_dir)
    size = tuple(int(s) for s in image_size)
    common = dict(size=size, channels=channels, fit=fit, batch_size=batch_size)
    return Datasets(
        train=pipeline.batched(source.train, shuffle_seed=plan.seed, **common),
        validation=pipeline.batched(source.validation, **common),
        test=pipeline.batched(source.test, **common),
        input_shape=(*size, channels),
        class_names=source.class_names,
        sizes=dict(source.sizes),
        skipped_files=source.skipped_files,
        spec=spec,
        facts=facts.describe(spec, shape=(*size, channels), sizes=source.sizes, plan=plan,
                             data_dir=data_dir),
    )


__all__ = ["DatasetFacts", "Datasets", "DataWarning", "Source", "SplitPlan", "SPEC_FORMS",
           "describe", "load", "load_source"]
