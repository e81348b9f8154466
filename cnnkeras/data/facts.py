"""What a run records about its dataset, in plain Python: name, digest, source, shape, sizes.

``describe`` looks at a dataset spec without reading its examples again. The digest
of the source's content is cheap and changes when the data does:

- ``digits``: a hash of scikit-learn's bundled arrays (images and labels);
- tfds names: a hash of the tfds name and version (``mnist/3.0.1``);
- ``idx:DIR``: a hash over the IDX files' names, sizes and modification times;
- ``folder:DIR``: the same over every file in the class folders;
- ``moving:SPEC``, ``segmentation:SPEC``: a hash of the form and SPEC's digest.

Each split is a dataset of its own (MLflow keys a dataset by name and digest): its
digest is a hash of its profile, which holds the source's digest, the split, its
number of examples, the shape of one example and the split plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from cnnkeras.data.specs import DERIVED_FORMS, TFDS_NAMES

DIGEST_LENGTH = 8  # what MLflow's own datasets use
DIGITS_SOURCE = "sklearn.datasets.load_digits"
TFDS_SCHEME = "tfds:"
DERIVED_KINDS = tuple(form.split(":")[0] for form in DERIVED_FORMS)


def short_hash(*parts) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else str(part).encode())
        hasher.update(b"\0")
    return hasher.hexdigest()[:DIGEST_LENGTH]


@dataclass(frozen=True)
class DatasetFacts:
    """One dataset spec as a run trained on it; no examples, only what describes them.

    ``shape`` is one example as the model gets it (after fitting to the input size),
    ``label_shape`` one label's (``()`` for a class index), ``sizes`` the examples per
    split and ``plan`` the split plan that carved them. ``source`` is a local path when
    ``local``, else the code the data comes from (``sklearn.datasets.load_digits``,
    ``tfds:mnist/3.0.1``).
    """

    name: str
    digest: str
    source: str
    shape: tuple
    sizes: dict
    local: bool = False
    label_shape: tuple = ()
    plan: dict = field(default_factory=dict)

    def profile(self, split: str) -> dict:
        """What the runs table's dataset entry shows for ``split``."""
        return {"split": split, "num_examples": int(self.sizes[split]),
                "examples_per_split": {k: int(v) for k, v in self.sizes.items()},
                "image_shape": list(self.shape), "label_shape": list(self.label_shape),
                "source_digest": self.digest, "split_plan": dict(self.plan)}

    def split_digest(self, split: str) -> str:
        """The digest of one split: a hash of its profile (the source's digest included)."""
        return short_hash(json.dumps(self.profile(split), sort_keys=True))


def files_digest(root: Path, files: Iterable[Path]) -> str:
    """A hash over the files' names (relative to ``root``), sizes and modification times."""
    lines = []
    for path in sorted(files):
        stat = path.stat()
        lines.append(f"{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}")
    return short_hash("\n".join(lines))


def folder_files(directory: Path) -> list[Path]:
    """Every file in the class folders, as ``sources.scan_folder`` walks them."""
    return [path for folder in directory.iterdir()
            if folder.is_dir() and not folder.name.startswith(".")
            for path in folder.rglob("*") if path.is_file() and not path.name.startswith(".")]


def content(spec: str, data_dir: Optional[str]) -> tuple[str, str, bool]:
    """``(digest, source, local)`` of a spec that is not derived from another."""
    kind, _, argument = spec.partition(":")
    if kind == "digits" and not argument:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return short_hash(digits.images.tobytes(), digits.target.tobytes()), DIGITS_SOURCE, False
    if kind in TFDS_NAMES and not argument:
        import tensorflow_datasets as tfds

        full_name = tfds.builder(kind, data_dir=data_dir).info.full_name  # mnist/3.0.1
        return short_hash(full_name), f"{TFDS_SCHEME}{full_name}", False
    directory = Path(argument).expanduser().resolve()
    if kind == "idx" and argument:
        from cnnkeras.data.idx import find_idx_pairs

        files = [path for pair in find_idx_pairs(directory).values() for path in pair]
        return files_digest(directory, files), str(directory), True
    if kind == "folder" and argument:
        return files_digest(directory, folder_files(directory)), str(directory), True
    raise ValueError(f"Cannot describe dataset spec {spec!r}: it is not one of "
                     f"digits, {', '.join(TFDS_NAMES)}, idx:DIR, folder:DIR.")


def describe(spec: str, *, shape: tuple, sizes: dict, plan,
             data_dir: Optional[str] = None) -> DatasetFacts:
    """The facts of ``spec`` whose images reach the model at ``shape`` (height, width, channels).

    ``sizes`` are the examples per split and ``plan`` the ``SplitPlan`` that carved them.
    """
    kind, _, inner = spec.partition(":")
    if kind in DERIVED_KINDS and inner:
        from cnnkeras.data import derived

        base = describe(inner, shape=shape, sizes=sizes, plan=plan, data_dir=data_dir)
        return derived.describe(kind, base)
    digest, source, local = content(spec, data_dir)
    return DatasetFacts(name=spec, digest=digest, source=source,
                        shape=tuple(int(s) for s in shape),
                        sizes={k: int(v) for k, v in sizes.items()}, local=local,
                        plan=dataclasses.asdict(plan))
