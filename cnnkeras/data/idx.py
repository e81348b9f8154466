"""MNIST-format IDX files: find the image/label pairs in a folder and read them as arrays.

Damaged files (truncated, mis-named gzip, a wrong header) raise one ``ValueError``
naming the file and what valid input looks like. NumPy only, no TensorFlow.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

IDX_HELP = ("Valid IDX input: PREFIX-images-idx3-ubyte[.gz] (N x H x W unsigned bytes) and "
            "PREFIX-labels-idx1-ubyte[.gz] (N labels), as MNIST is distributed.")
GZIP_MAGIC = b"\x1f\x8b"


def idx_bytes(path: Path) -> bytes:
    """The bytes of an IDX file, gunzipped when it is named ``.gz``; damage raises ValueError."""
    try:
        if path.suffix != ".gz":
            data = path.read_bytes()
            if data[:2] == GZIP_MAGIC:
                raise ValueError(f"{path} is gzip-compressed but not named .gz. {IDX_HELP}")
            return data
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except EOFError:
        reason = "its gzip data ends early (the file is truncated)"
    except (gzip.BadGzipFile, zlib.error) as err:
        reason = f"it is not valid gzip data ({err})"
    except OSError as err:
        reason = f"{type(err).__name__}: {err}"
    raise ValueError(f"Cannot read {path}: {reason}. {IDX_HELP}")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as a NumPy array."""
    data = idx_bytes(path)
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file (bad magic number: it starts with "
            f"0x{data[:4].hex() or '(empty)'}, expected 0x000008 and the number of dimensions). "
            f"{IDX_HELP}")
    ndim = data[3]
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"{path} is truncated: its {ndim}-dimension header needs {offset} "
                         f"bytes, the file holds {len(data)}. {IDX_HELP}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected, held = math.prod(dims), len(data) - offset
    if held != expected:
        state = "truncated" if held < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: the header says {dims} ({expected} values), "
                         f"the file holds {held}. {IDX_HELP}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


IDX_PATTERN = re.compile(r"^(?P<prefix>.+)-(?P<kind>images-idx3|labels-idx1)-ubyte(\.gz)?$")


def find_idx_pairs(directory: Path) -> dict:
    """``{prefix: (images_path, labels_path)}`` for the IDX files in ``directory``."""
    if not directory.is_dir():
        raise ValueError(f"IDX directory {str(directory)!r} does not exist or is not a directory.")
    found: dict = {}
    for path in sorted(directory.iterdir()):
        match = IDX_PATTERN.match(path.name)
        if match:
            found.setdefault(match["prefix"], {})[match["kind"]] = path
    pairs = {p: (k["images-idx3"], k["labels-idx1"]) for p, k in found.items() if len(k) == 2}
    if not pairs:
        raise ValueError(
            f"No IDX pair in {str(directory)!r}: expected files named "
            "PREFIX-images-idx3-ubyte[.gz] and PREFIX-labels-idx1-ubyte[.gz]."
        )
    return pairs


def read_idx_pair(images_path: Path, labels_path: Path):
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{images_path.name} must hold N x H x W images and {labels_path.name} N labels. "
            f"Received shapes {images.shape} and {labels.shape}."
        )
    if len(labels) == 0:
        raise ValueError(f"{images_path.name} and {labels_path.name} hold no examples.")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds "
            f"{len(labels)} labels; the counts must match."
        )
    return images, labels
