"""Top-k classes for your own pictures: a saved cnnkeras classifier, or ImageNet Inception v3.

The classifier is any model ``cnnkeras.tracking.models.load`` loads: a ``.keras`` file
(class names and pixel range from its ``.classes.json``) or an MLflow URI
(``runs:/<run id>/model``, ``models:/NAME/VERSION``, ``models:/NAME/latest``,
``models:/<model id>``; from the logged model's metadata). Any picture PIL opens is
accepted (``cnnkeras.data.images.load_image``), converted to the model's channels
(RGB to grayscale or back) and resized exactly as the training pipeline does
(``cnnkeras.data.images.fit_image``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from cnnkeras.data.images import fit_image, load_image

IMAGENET_SIZE = 299


@dataclass(frozen=True)
class Prediction:
    """One image's top-k: ``(label, probability)`` pairs, most likely first."""

    image: str
    top: tuple

    def format(self) -> str:
        width = max(len(label) for label, _ in self.top)
        rows = [f"  {rank}. {label:<{width}}  {prob:.4f}"
                for rank, (label, prob) in enumerate(self.top, start=1)]
        return "\n".join([self.image, *rows])


def batch_of(paths: Sequence, size: tuple, channels: int = 3) -> np.ndarray:
    """Images with ``channels`` (1 or 3) resized to ``size`` as the training pipeline does;
    float32 pixels in [0, 255]."""
    return np.stack([_fitted(p, tuple(size), channels) for p in paths]).astype(np.float32)


def _fitted(path, size: tuple, channels: int) -> np.ndarray:
    image = load_image(path)
    try:
        return fit_image(image, size=size, channels=channels, fit="resize").numpy()
    except Exception as err:  # TensorFlow's own errors are not ValueErrors
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"cannot convert {str(path)!r} to the model's input "
                         f"{'x'.join(map(str, (*size, channels)))}: {reason}") from None


def image_input(model, images: Sequence) -> tuple:
    """``(height, width, channels)`` of the one image input of ``model``; a model the
    images cannot be given to raises ``ValueError`` naming the first image."""
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4:
        raise ValueError(f"cannot convert {str(images[0])!r} to the model's input {shape}: "
                         "predict gives a model one image input (batch, height, width, "
                         "channels).")
    _, height, width, channels = shape
    if channels not in (1, 3):
        raise ValueError(f"cannot convert {str(images[0])!r} to the model's input "
                         f"{height}x{width}x{channels}: a picture becomes 1 (grayscale) or 3 "
                         f"(RGB) channels, not {channels}.")
    if height is None or width is None:
        raise ValueError("the model takes images of any size; predict needs a fixed one.")
    return height, width, channels


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int) -> tuple:
    order = np.argsort(-probabilities, kind="stable")[: max(1, min(k, len(labels)))]
    return tuple((labels[i], float(probabilities[i])) for i in order)


def classify(model, class_names: Sequence[str], images: Sequence, *, k: int = 5,
             input_range: tuple = (0, 255)) -> list:
    """Top-``k`` of ``model`` (pixels in ``input_range`` in, probabilities out) for image files."""
    if not images:
        raise ValueError("name at least one image after the model.")
    height, width, channels = image_input(model, images)
    low, high = input_range
    pixels = low + batch_of(images, (height, width), channels) * np.float32((high - low) / 255.0)
    probabilities = np.asarray(model.predict_on_batch(pixels))
    return [Prediction(str(p), top_k(row, class_names, k))
            for p, row in zip(images, probabilities, strict=True)]


def predict_images(model_ref, images: Sequence, *, k: int = 5) -> list:
    """Top-``k`` of a saved classifier: a ``.keras`` path (``cnnkeras transfer``,
    ``saving.save_classifier``) or an MLflow URI (module docstring)."""
    from cnnkeras.tracking.models import load

    if not images:
        raise ValueError("name at least one image after the model.")
    for image in images:  # a missing or broken picture fails before the slow model load
        load_image(image)
    loaded = load(model_ref)
    return classify(loaded.model, class_names(loaded), images, k=k,
                    input_range=loaded.input_range)


def scales_inside(model) -> bool:
    """Whether the model's first layer rescales its input (cnnkeras models' ``pixels``)."""
    import keras

    first = next((layer for layer in model.layers
                  if not isinstance(layer, keras.layers.InputLayer)), None)
    return isinstance(first, keras.layers.Rescaling)


def class_names(loaded) -> tuple:
    """The model's class names; ``class_0 ...`` with a warning when nothing records them.

    A model that records nothing and does not scale its own input was saved before
    models carried their class names and took pixels in [0, 255]: its input range
    cannot be known, so it is refused in one line saying how to re-save it.
    """
    if loaded.class_names is not None:
        return loaded.class_names
    if not scales_inside(loaded.model):
        raise ValueError(
            f"{loaded.source} was saved before cnnkeras models carried their class names "
            "and scaled their own pixels, so its input range is unknown. Re-save it: train "
            "it again (`cnnkeras train ... --register`, then predict models:/NAME/VERSION), "
            "or log it with cnnkeras.tracking.models.log_model(run, model, class_names=..., "
            "input_example=..., input_range=(0, 1)).")
    import warnings

    from cnnkeras.tracking.models import is_uri
    from cnnkeras.transfer.saving import sidecar_path

    where = (f"{loaded.source} records no class names" if is_uri(loaded.source)
             else f"{sidecar_path(loaded.source)} is missing")
    warnings.warn(f"{where}; classes are shown by index.", stacklevel=3)
    return tuple(f"class_{i}" for i in range(loaded.model.output_shape[-1]))


def imagenet_model(weights: Optional[str] = "imagenet"):
    """The whole ImageNet Inception v3 (1000 classes): downloaded, or from a weights file."""
    import keras

    from cnnkeras.architectures.inception import (
        TOP_FILE,
        check_weights,
        fetch_imagenet,
        is_none,
        load_weights_file,
    )

    if is_none(weights):
        raise ValueError("--imagenet needs ImageNet weights: 'imagenet' (download) or the "
                         f"path of {TOP_FILE}.")
    if weights == "imagenet":
        return fetch_imagenet(instead=f"pass --weights PATH to a downloaded {TOP_FILE}")
    path = check_weights(weights, (IMAGENET_SIZE, IMAGENET_SIZE, 3))
    model = keras.applications.InceptionV3(weights=None)
    load_weights_file(model, path, what="ImageNet Inception v3 weights (with the top)")
    return model


def decoded(probabilities: np.ndarray, k: int, class_index: Optional[str] = None) -> list:
    """Per image, ``(label, probability)`` pairs as ``decode_predictions`` reports them.

    ``class_index``: a local ``imagenet_class_index.json`` (offline); without it Keras'
    cached or downloaded copy, and where neither can be had ``imagenet class N`` labels
    with a warning.
    """
    from keras.applications import inception_v3

    if class_index is not None:
        try:
            index = json.loads(Path(class_index).read_text())
            labels = tuple(f"{index[str(i)][0]} {index[str(i)][1]}" for i in range(1000))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as err:
            raise ValueError(f"{class_index!r} is not an imagenet_class_index.json "
                             f"({type(err).__name__}: {err}).") from None
        return [top_k(row, labels, k) for row in probabilities]
    try:
        rows = inception_v3.decode_predictions(probabilities, top=k)
    except Exception as err:  # get_file raises a bare Exception when offline
        import warnings

        warnings.warn(f"ImageNet class names unavailable ({str(err).splitlines()[0]}); "
                      "showing class numbers. Pass --class-index FILE to name them.",
                      stacklevel=2)
        return [top_k(row, tuple(f"imagenet class {i}" for i in range(1000)), k)
                for row in probabilities]
    return [tuple((f"{wnid} {name}", float(score)) for wnid, name, score in row)
            for row in rows]


def predict_imagenet(images: Sequence, *, weights: Optional[str] = "imagenet", k: int = 5,
                     class_index: Optional[str] = None) -> list:
    """Top-``k`` ImageNet classes of each image, as ``decode_predictions`` reports them."""
    from keras.applications import inception_v3

    if not images:
        raise ValueError("name at least one image.")
    pixels = batch_of(images, (IMAGENET_SIZE, IMAGENET_SIZE))  # read before the slow part
    model = imagenet_model(weights)
    probabilities = np.asarray(model.predict_on_batch(inception_v3.preprocess_input(pixels)))
    tops = decoded(probabilities, k, class_index)
    return [Prediction(str(p), top) for p, top in zip(images, tops, strict=True)]
