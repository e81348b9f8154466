"""The pyfunc face of a cnnkeras model: probabilities in one column per class name.

MLflow calls ``_load_pyfunc(path)`` (the loader-module hook of its pyfunc flavour)
with the model's data folder, as ``mlflow.keras`` lays it out. ``predict`` takes a
batch of images as the model takes them (N, H, W, C) and returns a DataFrame whose
columns are the class names, so a scoring server answers with named probabilities.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from mlflow.models import Model


class Classifier:
    """A Keras classifier whose answers are named by its classes."""

    def __init__(self, model, class_names):
        self.model = model
        self.class_names = list(class_names)

    def get_raw_model(self):
        return self.model

    def predict(self, data, params=None) -> pd.DataFrame:
        images = np.asarray(data.to_numpy() if isinstance(data, pd.DataFrame) else data,
                            dtype="float32")
        probabilities = np.asarray(self.model.predict(images, verbose=0), dtype="float64")
        return pd.DataFrame(probabilities.reshape(len(images), -1), columns=self.class_names)


def _load_pyfunc(path: str) -> Classifier:
    """``path`` is the model's folder or its data folder (MLflow passes either)."""
    import mlflow.keras

    root = os.path.abspath(path)
    if not os.path.isfile(os.path.join(root, "MLmodel")):
        root = os.path.dirname(root)
    meta = Model.load(os.path.join(root, "MLmodel")).metadata or {}
    model = mlflow.keras.load_model(root)
    names = meta.get("class_names") or [str(i) for i in range(model.output_shape[-1])]
    return Classifier(model, names)
