"""Models as MLflow models: logged with MLflow's Keras flavour, registered, loaded back.

A run's model is an MLflow 3 logged model named ``model``: ``runs:/<run id>/model``
and ``models:/<model id>`` address it, ``mlflow.keras.load_model`` gives the Keras
model back, and a registered version is ``models:/NAME/VERSION``. Its metadata
carries the class names and the input it takes (shape, pixel range), and its
pyfunc flavour (``cnnkeras.tracking.pyfunc``) answers with one probability column
per class name, so ``mlflow models serve`` says which class each number is for.

``load`` gives back any model cnnkeras can name: such a URI, or a ``.keras`` file with
its ``.classes.json`` beside it (``cnnkeras.transfer.saving``), with its class names and
the pixel range it takes.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import keras
import mlflow
import mlflow.keras
import numpy as np
from mlflow.models import Model, infer_signature

from cnnkeras.tracking import requirements
from cnnkeras.tracking.runs import Run
from cnnkeras.tracking.store import _sqlite_path, client, tracking_uri

MODEL_NAME = "model"
PYFUNC_LOADER = "cnnkeras.tracking.pyfunc"


class KerasFlavour:
    """``mlflow.keras`` as ``Model.log`` calls it, with two changes.

    MLflow 3.17's ``mlflow.keras.save_model`` writes ``input_example.json`` into the
    model folder before it creates that folder (FileNotFoundError for any input
    example), so the folder is made first. The pyfunc flavour is pointed at
    ``cnnkeras.tracking.pyfunc``, which names the probability columns by class.
    """

    __name__ = "mlflow.keras"

    @staticmethod
    def save_model(path, mlflow_model, validate_serving_input=None, **kwargs):
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
    with _as_active(run), requirements.pinned_without_check() as pins:
        info = Model.log(artifact_path=None, name=MODEL_NAME, flavor=KerasFlavour, model=model,
                         signature=signature, input_example=input_example, metadata=meta,
                         pip_requirements=pins,
                         # MLflow would load the model back and predict the example: the
                         # same work the signature's call did a moment ago
                         validate_serving_input=False)
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


# --- loading any model by reference: a runs:/ or models:/ URI, or a .keras file ------------

URI_SCHEMES = ("runs:/", "models:/")
DEFAULT_RANGE = (0, 255)  # what log_model and a sidecar without input_range mean


@dataclass(frozen=True)
class LoadedModel:
    """A model with what using it needs: its class names (None when nothing records
    them), the pixel range it takes (``(0, 1)`` or ``(0, 255)``) and the reference it was
    loaded from."""

    model: keras.Model
    class_names: Optional[tuple]
    input_range: tuple
    source: str


def is_uri(ref) -> bool:
    return str(ref).startswith(URI_SCHEMES)


def load(ref) -> LoadedModel:
    """The model ``ref`` names: ``runs:/<run id>/model``, ``models:/NAME/VERSION``,
    ``models:/NAME/latest``, ``models:/<model id>``, or a ``.keras`` path.

    A reference to nothing raises ``ValueError`` in one line saying what exists (the
    registered models, a name's versions).
    """
    import cnnkeras.layers  # noqa: F401  (registers the custom layers for loading)

    ref = str(ref)
    if not is_uri(ref):
        return _load_keras_file(Path(ref))
    _check_reference(ref)
    try:
        with _no_progress_bars():
            record = model_metadata(ref)
    except (mlflow.exceptions.MlflowException, OSError) as err:
        raise ValueError(_no_run_model(ref) if ref.startswith("runs:/")
                         else f"{ref}: {_first_line(err)}") from None
    try:
        with _no_progress_bars():
            model = mlflow.keras.load_model(ref, load_model_kwargs={"compile": False})
    except Exception as err:  # a damaged artifact, a layer this cnnkeras does not know
        raise ValueError(f"{ref}: could not load the model: {_first_line(err)}") from None
    return _loaded(model, record, ref, where=f"{ref}'s metadata")


def _loaded(model, record: Mapping, source: str, *, where: str) -> LoadedModel:
    names = record.get("class_names")
    count = model.output_shape[-1]
    if names is not None and len(names) != count:
        raise ValueError(f"{where} names {len(names)} classes but the model has {count} "
                         "outputs; they do not belong together.")
    low, high = record.get("input_range", DEFAULT_RANGE)
    return LoadedModel(model, tuple(map(str, names)) if names is not None else None,
                       (low, high), source)


def _load_keras_file(path: Path) -> LoadedModel:
    """A ``.keras`` file, reloaded in safe mode, with what its sidecar records."""
    from cnnkeras.transfer.saving import VALID_MODEL, sidecar_path, what_it_is

    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a Keras model: {what_it_is(path)}. {VALID_MODEL}")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # a foreign zip, a damaged archive, an unsafe layer
        raise ValueError(f"could not load model {str(path)!r}: "
                         f"{_first_line(err).rstrip('.')}. {VALID_MODEL}") from None
    sidecar = sidecar_path(path)
    record = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    return _loaded(model, record, str(path), where=str(sidecar))


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """No "Downloading artifacts" bars on stderr while a model is fetched."""
    saved = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = saved


def _missing(call) -> bool:
    """Whether the store call raises MLflow's does-not-exist error."""
    try:
        call()
    except mlflow.exceptions.MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return True
        raise ValueError(_first_line(err)) from None
    return False


def _registered_line() -> str:
    names = registered_names()
    return f"Registered models: {', '.join(names)}." if names else "No model is registered."


def _check_reference(ref: str) -> None:
    """Raise ``ValueError`` in one line if the store holds nothing ``ref`` names."""
    path = _sqlite_path(tracking_uri())
    if path is not None and not path.exists():
        raise ValueError(f"{ref}: there is no tracking store {tracking_uri()}; set "
                         "MLFLOW_TRACKING_URI to the store the model was logged in.")
    registry = client()
    scheme, _, rest = ref.partition(":/")
    head, _, tail = rest.partition("/")
    if scheme == "runs" and _missing(lambda: registry.get_run(head)):
        raise ValueError(f"{ref}: no run {head!r} in the tracking store {tracking_uri()}.")
    if scheme == "models" and not tail and "@" not in head:
        if _missing(lambda: registry.get_logged_model(head)):
            raise ValueError(f"{ref}: no logged model {head!r} (models:/ takes NAME/VERSION, "
                             f"NAME/latest or a model id). {_registered_line()}")
    elif scheme == "models":
        _check_version(ref, registry, *head.partition("@")[::2], tail)


def _check_version(ref: str, registry, name: str, alias: str, version: str) -> None:
    if _missing(lambda: registry.get_registered_model(name)):
        raise ValueError(f"{ref}: no registered model {name!r}. {_registered_line()}")
    quoted = name.replace("'", "\\'")
    versions = sorted(int(v.version) for v in registry.search_model_versions(
        f"name = '{quoted}'"))
    if alias:
        exists = not _missing(lambda: registry.get_model_version_by_alias(name, alias))
    elif version == "latest":
        exists = bool(versions)
    else:
        exists = version.isdigit() and int(version) in versions
    if not exists:
        what = f"alias {alias!r}" if alias else f"version {version}"
        listed = ", ".join(map(str, versions)) or "none yet"
        raise ValueError(f"{ref}: registered model {name!r} has no {what}. Its versions: "
                         f"{listed}. {_registered_line()}")


def _no_run_model(ref: str) -> str:
    """The line for a ``runs:/`` URI whose run exists but holds no such model."""
    run_id, _, name = ref.removeprefix("runs:/").partition("/")
    outputs = client().get_run(run_id).outputs
    ids = [o.model_id for o in (outputs.model_outputs if outputs else [])]
    names = sorted({client().get_logged_model(i).name for i in ids})
    has = f"its models: {', '.join(names)}" if names else "it has logged no model"
    return f"{ref}: run {run_id} has no model {name or '(none named)'!r}; {has}."


__all__ = ["MODEL_NAME", "LoadedModel", "is_uri", "load", "log_model", "model_metadata",
           "register", "registered_names"]
