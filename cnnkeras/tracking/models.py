"""Models as MLflow models: logged with MLflow's Keras flavour, registered, loaded back.

A run's model is an MLflow 3 logged model named ``model``: ``runs:/<run id>/model``
and ``models:/<model id>`` address it, ``mlflow.keras.load_model`` gives the Keras
model back, and a registered version is ``models:/NAME/VERSION``. Its metadata
carries the class names and the input it takes (shape, pixel range), and its
pyfunc flavour (``cnnkeras.tracking.pyfunc``) answers with one probability column
per class name, so ``mlflow models serve`` says which class each number is for.
"""

from __future__ import annotations

import contextlib
import os
from importlib import metadata
from typing import Iterator, Mapping, Optional, Sequence

import mlflow
import mlflow.keras
import numpy as np
from mlflow.models import Model, infer_signature

from cnnkeras.tracking.runs import Run
from cnnkeras.tracking.store import client

MODEL_NAME = "model"
PYFUNC_LOADER = "cnnkeras.tracking.pyfunc"
# What a served model needs installed, pinned to what trained it (MLflow would otherwise
# infer them by loading the model in a subprocess: seconds per logged model).
REQUIREMENTS = ("tensorflow", "keras", "mlflow", "numpy", "pandas")


def requirements() -> list[str]:
    pins = []
    for name in REQUIREMENTS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{name}=={metadata.version(name)}")
    return pins


class KerasFlavour:
    """``mlflow.keras`` as ``Model.log`` calls it, with two changes.

    MLflow 3.17's ``mlflow.keras.save_model`` writes ``input_example.json`` into the
    model folder before it creates that folder (FileNotFoundError for any input
    example), so the folder is made first. The pyfunc flavour is pointed at
    ``cnnkeras.tracking.pyfunc``, which names the probability columns by class.
    """

    __name__ = "mlflow.keras"

    @staticmethod
    def save_model(path, mlflow_model, **kwargs):
        os.makedirs(path, exist_ok=True)
        mlflow.keras.save_model(path=path, mlflow_model=mlflow_model, **kwargs)
        mlflow_model.flavors["python_function"]["loader_module"] = PYFUNC_LOADER
        mlflow_model.save(os.path.join(path, "MLmodel"))


@contextlib.contextmanager
def _as_active(run: Run) -> Iterator[None]:
    """``run`` as MLflow's active run for one call that only works on the active run;
    it stays RUNNING afterwards (cnnkeras ends its runs itself)."""
    mlflow.start_run(run_id=run.run_id)
    try:
        yield
    finally:
        mlflow.end_run(status="RUNNING")


def log_model(run: Run, model, *, class_names: Sequence[str], input_example: np.ndarray,
              input_range: tuple = (0, 255)) -> str:
    """Log ``model`` into ``run`` as its MLflow model; returns the ``models:/<id>`` URI.

    The signature comes from ``input_example`` (a few images as the model takes them)
    and the model's answer to it; both are stored with the model.
    """
    input_example = np.asarray(input_example, dtype="float32")
    # a plain call, not predict(): under a multi-worker strategy predict() is a collective
    # step, and the other workers have finished by the time the chief logs
    outputs = np.asarray(model(input_example, training=False), dtype="float32")
    signature = infer_signature(input_example, outputs)
    meta = {"class_names": [str(name) for name in class_names],
            "input_shape": [int(d) for d in model.input_shape[1:]],
            "input_range": list(input_range)}
    with _as_active(run):
        info = Model.log(artifact_path=None, name=MODEL_NAME, flavor=KerasFlavour, model=model,
                         signature=signature, input_example=input_example, metadata=meta,
                         pip_requirements=requirements())
    return info.model_uri


def register(model_uri: str, name: str, *, run_id: Optional[str] = None,
             tags: Optional[Mapping[str, object]] = None) -> str:
    """A new version of registered model ``name`` (created when missing) from ``model_uri``;
    returns its ``models:/NAME/VERSION`` URI."""
    registry = client()
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # it exists already
        registry.create_registered_model(name)
    version = registry.create_model_version(
        name, source=model_uri, run_id=run_id, tags={k: str(v) for k, v in (tags or {}).items()},
        model_id=model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None)
    return f"models:/{name}/{version.version}"


def registered_names() -> list[str]:
    return sorted(model.name for model in client().search_registered_models())


def model_metadata(uri: str) -> dict:
    """The metadata cnnkeras logged with the model at ``uri`` (class names, input)."""
    from mlflow.models import get_model_info

    return dict(get_model_info(uri).metadata or {})


__all__ = ["MODEL_NAME", "log_model", "model_metadata", "register", "registered_names"]
