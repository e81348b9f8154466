"""A saved classifier: ``NAME.keras`` plus ``NAME.classes.json`` (class names and input facts).

The input facts say what the model takes: its input shape and the range of its pixel
values. Every model cnnkeras builds takes ``[0, 255]`` (its ``pixels`` layer scales them),
the range assumed when a sidecar does not say; models trained on ``cnnkeras.data``
pipelines before that scaling moved into the model took ``[0, 1]``, and their sidecars
say so.

Both files are written under temporary names and renamed only when both are
complete, so a failed or interrupted save never leaves a half-written model.
The ``.keras`` file is plain Keras (no custom or ``Lambda`` layers): it reloads
with ``keras.saving.load_model`` in its default safe mode.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Mapping, Optional

import keras

SIDECAR_SUFFIX = ".classes.json"
VALID_MODEL = ("Valid: a .keras file (a zip archive) saved by `cnnkeras transfer` or "
               "`cnnkeras train`, e.g. runs/transfer_flowers/RUN_ID/model.keras.")
DEFAULT_RANGE = (0, 255)


def sidecar_path(model_path) -> Path:
    """``flowers.keras`` -> ``flowers.classes.json`` beside it."""
    path = Path(model_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def save_classifier(model: keras.Model, path, class_names, *, info: Optional[Mapping] = None,
                    input_range: tuple = DEFAULT_RANGE) -> Path:
    """Save ``model`` to ``path`` (``.keras``) and its class names beside it, atomically.

    ``input_range``: the pixel values ``model`` takes, (0, 1) or (0, 255).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model path must end in .keras. Received: {str(path)!r}")
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"{len(class_names)} class names for a model of "
                         f"{model.output_shape[-1]} outputs: {list(class_names)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f".{path.stem}.{os.getpid()}.tmp"
    model_tmp = path.with_name(tag + ".keras")
    sidecar_tmp = path.with_name(tag + SIDECAR_SUFFIX)
    record = {"class_names": list(class_names), "input_shape": list(model.input_shape[1:]),
              "input_range": list(input_range), **dict(info or {})}
    try:
        model.save(model_tmp)
        sidecar_tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(sidecar_tmp, sidecar_path(path))
        os.replace(model_tmp, path)
    finally:
        model_tmp.unlink(missing_ok=True)
        sidecar_tmp.unlink(missing_ok=True)
    return path


def what_it_is(path: Path) -> str:
    """Why ``path`` cannot be a ``.keras`` model, naming an image put first by mistake."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return f"it is a {image.format} image (the model comes first, then the images)"
    except (UnidentifiedImageError, OSError):
        pass
    if path.suffix != ".keras":
        return f"its name ends in {path.suffix!r}, not .keras" if path.suffix else \
            "its name does not end in .keras"
    return "it is not a zip archive, as every .keras file is"


def load_classifier(path):
    """``(model, class_names)``; the model reloaded in safe mode.

    Without the sidecar file the names are ``class_0 ...`` and a warning says so.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a Keras model: {what_it_is(path)}. {VALID_MODEL}")
    try:
        model = keras.saving.load_model(path)
    except Exception as err:  # a foreign zip, a damaged archive, an unsafe layer
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        raise ValueError(f"could not load model {str(path)!r}: {reason}. {VALID_MODEL}") from None
    sidecar = sidecar_path(path)
    count = model.output_shape[-1]
    if not sidecar.is_file():
        import warnings

        warnings.warn(f"{sidecar} is missing; classes are shown by index.", stacklevel=2)
        return model, tuple(f"class_{i}" for i in range(count))
    names = tuple(json.loads(sidecar.read_text())["class_names"])
    if len(names) != count:
        raise ValueError(f"{sidecar} names {len(names)} classes but the model has {count} "
                         "outputs; the two files do not belong together.")
    return model, names


def input_range(model_path) -> tuple:
    """The pixel range the sidecar of ``model_path`` records; (0, 255) when it says nothing."""
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        return DEFAULT_RANGE
    return tuple(json.loads(sidecar.read_text()).get("input_range", DEFAULT_RANGE))
