"""Every MLflow call cnnkeras makes lives here.

Runs are created through ``MlflowClient`` with explicit run ids, never through
the fluent "active run", so nested trial runs, resumed runs and any
``mlflow.autolog`` a user switched on cannot log into each other.

A SQLite store is checked before MLflow opens it (MLflow would retry for minutes
and then raise a traceback), and created under a file lock, so commands starting
together on a fresh store do not race through its schema migrations.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import mlflow
import sqlalchemy
from mlflow.tracking import MlflowClient

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
PARENT_TAG = "mlflow.parentRunId"
PID_TAG = "cnnkeras.pid"
HOST_TAG = "cnnkeras.host"
MAX_PARAM_LENGTH = 6000
BATCH = 100
SQLITE_HEADER = b"SQLite format 3\x00"
USE_ANOTHER_STORE = "Set MLFLOW_TRACKING_URI to a writable sqlite:///PATH or a tracking server."
_opened_stores: set[str] = set()  # SQLite URIs this process has checked and opened


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def client() -> MlflowClient:
    """A client of the tracking store; a SQLite store is checked and created first.

    Raises ``ValueError`` at once for a store that cannot be created or is not a
    SQLite database.
    """
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)  # schema set-up chatter
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    path = _sqlite_path(uri)
    if path is None or uri in _opened_stores:
        return MlflowClient(uri)
    _check_sqlite_store(uri, path)
    with _creation_lock(path):  # the client creates the store and migrates its schema
        opened = MlflowClient(uri)
    _opened_stores.add(uri)
    return opened


def _sqlite_path(uri: str) -> Optional[Path]:
    """The database file of a ``sqlite:///PATH`` URI; None for other stores and in-memory ones."""
    if not uri.startswith("sqlite:"):
        return None
    database = sqlalchemy.engine.make_url(uri).database
    return Path(database).absolute() if database and database != ":memory:" else None


def _check_sqlite_store(uri: str, path: Path) -> None:
    """Fail with one line where MLflow would retry for minutes and then raise.

    Nothing is written unless the store can be created: then the missing folders are.
    """
    try:
        exists = path.exists()
    except OSError as err:  # a folder on the way this user may not enter
        raise ValueError(f"MLflow store {uri} cannot be opened: {err.strerror}: "
                         f"{err.filename}. {USE_ANOTHER_STORE}") from None
    if exists:
        _check_sqlite_file(uri, path)
        return
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        problem = f"{folder} is a file, not a directory"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"directory {folder} is not writable"
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return
        except OSError as err:
            problem = f"directory {path.parent} cannot be made ({err.strerror})"
    raise ValueError(f"MLflow store {uri} cannot be created: {problem}. {USE_ANOTHER_STORE}")


def _check_sqlite_file(uri: str, path: Path) -> None:
    """An existing store file must be a SQLite database; an empty file becomes one."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as err:  # a directory, or a file this user may not read
        raise ValueError(f"MLflow store {uri} cannot be opened: {err.strerror}: {path}. "
                         f"{USE_ANOTHER_STORE}") from None
    if header and header != SQLITE_HEADER:
        raise ValueError(f"MLflow store {uri} is not a SQLite database: {path} holds "
                         f"{path.stat().st_size} bytes of something else (left untouched). "
                         f"{USE_ANOTHER_STORE}")


def _check_writable(uri: str) -> None:
    """Work writes to the store: SQLite needs its file, and its folder for the journal."""
    path = _sqlite_path(uri)
    if path is None:
        return
    for target in (path.parent, path):
        if not os.access(target, os.W_OK):
            kind = "directory" if target.is_dir() else "file"
            raise ValueError(f"MLflow store {uri} is read-only: {kind} {target} is not "
                             f"writable. {USE_ANOTHER_STORE}")


def _creation_lock(path: Path) -> contextlib.AbstractContextManager:
    """An exclusive lock on ``<path>.lock`` while MLflow creates the store ``path``.

    Without it, two commands starting on a fresh store both run MLflow's schema
    migrations and one dies half-way ("Online migration expected to match one row").
    The lock file stays (removing it would let a waiting process lock a stale file).
    """
    try:
        handle = open(f"{path}.lock", "a")
    except OSError:  # a read-only folder holding an existing store: nothing is created
        return contextlib.nullcontext()
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle  # closing it releases the lock


def check_store() -> None:
    """Raise ``ValueError`` now, in one line, if the tracking store cannot take runs.

    Creates the store when it is new (nothing else): called first by long commands,
    so a bad ``MLFLOW_TRACKING_URI`` is not found only after data and model are ready.
    """
    client()
    _check_writable(tracking_uri())


def experiment_id(name: str) -> str:
    """The id of experiment ``name``, created (and tagged as model training) when missing.

    Runs a process left RUNNING when it was killed are ended as KILLED here,
    since this is where any resumed work begins.
    """
    mlflow_client = client()
    _check_writable(tracking_uri())
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return mlflow_client.create_experiment(
                name, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except mlflow.exceptions.MlflowException:  # another process created it first?
            experiment = mlflow_client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow_client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG,
                                         EXPERIMENT_KIND)
    end_orphaned_runs(experiment.experiment_id)
    return experiment.experiment_id


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_orphaned_runs(exp_id: str) -> list[str]:
    """End as KILLED the RUNNING runs of this host whose process no longer exists."""
    mlflow_client = client()
    ended = []
    host = socket.gethostname()
    for run in mlflow_client.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'",
                                         max_results=5000):
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or PID_TAG not in tags:
            continue
        pid = int(tags[PID_TAG])
        if pid != os.getpid() and not _alive(pid):
            mlflow_client.set_terminated(run.info.run_id, status="KILLED")
            mlflow_client.set_tag(run.info.run_id, "cnnkeras.ended_by",
                                  "cleanup after process died")
            if tags.get("trial_status") == "RUNNING":  # a search trial cut off mid-way
                mlflow_client.set_tag(run.info.run_id, "trial_status", "KILLED")
            ended.append(run.info.run_id)
    return ended


def _param_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


class Run:
    """One MLflow run, addressed by id; what a training or tuning step records."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.client = client()

    def log_params(self, params: Mapping[str, Any]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        items = [
            mlflow.entities.Param(k, _param_text(v)) for k, v in params.items()
            if k not in existing and v is not None
        ]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start: start + BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        stamp = int(time.time() * 1000)
        items = [
            mlflow.entities.Metric(k, float(v), stamp, step or 0)
            for k, v in metrics.items() if v is not None
        ]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=items[start: start + BATCH])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def log_dict(self, value: dict, name: str) -> None:
        self.client.log_text(self.run_id, json.dumps(value, indent=2, sort_keys=True,
                                                     default=str), name)

    def callback(self):
        """A Keras callback logging every epoch's metrics to this run."""
        return _metrics_callback_class()(self)


@functools.cache
def _metrics_callback_class() -> type:
    import keras  # TensorFlow loads for training only, not for `compare` or `ui`

    class MetricsCallback(keras.callbacks.Callback):
        """Logs every epoch's ``logs`` (loss, accuracy, val_*) to the run, step = epoch."""

        def __init__(self, run: Run):
            super().__init__()
            self.run = run

        def on_epoch_end(self, epoch, logs=None):
            self.run.log_metrics(dict(logs or {}), step=epoch)

    return MetricsCallback


def create_run(exp_id: str, *, name: str, tags: Optional[Mapping[str, Any]] = None,
               parent: Optional[str] = None) -> Run:
    all_tags = {PID_TAG: os.getpid(), HOST_TAG: socket.gethostname(), **(tags or {})}
    if parent:
        all_tags[PARENT_TAG] = parent
    created = client().create_run(exp_id, run_name=name,
                                  tags={k: str(v) for k, v in all_tags.items()})
    return Run(created.info.run_id)


def reopen_run(run_id: str) -> Run:
    """Continue an existing run in this process (status RUNNING again, this pid)."""
    run = Run(run_id)
    run.client.update_run(run_id, status="RUNNING")
    run.set_tags({PID_TAG: os.getpid(), HOST_TAG: socket.gethostname()})
    return run


def end_run(run: Run, status: str = "FINISHED") -> None:
    run.client.set_terminated(run.run_id, status=status)


@contextlib.contextmanager
def active(run: Run) -> Iterator[Run]:
    """End ``run`` FINISHED, FAILED on an error, KILLED on Ctrl-C or SIGTERM."""
    try:
        yield run
    except (KeyboardInterrupt, SystemExit):
        end_run(run, "KILLED")
        raise
    except BaseException as err:
        run.set_tags({"cnnkeras.error": f"{type(err).__name__}: {err}"[:5000]})
        end_run(run, "FAILED")
        raise
    else:
        end_run(run, "FINISHED")


@contextlib.contextmanager
def artifact_dir() -> Iterator[Path]:
    """A temporary folder for files that are logged and then not needed locally."""
    with tempfile.TemporaryDirectory(prefix="cnnkeras-") as folder:
        yield Path(folder)


def find_runs(exp_id: str, filter_string: str = "", max_results: int = 1000):
    return client().search_runs([exp_id], filter_string=filter_string, max_results=max_results)


def cnnkeras_experiments() -> list:
    """The store's live experiments that cnnkeras created (tagged as model training)."""
    return [e for e in client().search_experiments()
            if e.tags.get(EXPERIMENT_KIND_TAG) == EXPERIMENT_KIND]


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one metric of one run, in step order."""
    return sorted((m.step, m.value) for m in client().get_metric_history(run_id, key))


def disable_autolog() -> None:
    """Keep MLflow's Keras/TF autologging out of cnnkeras' own runs.

    ``mlflow.autolog()`` switches on both flavours; each would open a run of its
    own per ``fit`` (or log into whatever run is active), beside the tracked ones.
    """
    for flavour in ("tensorflow", "keras"):
        with contextlib.suppress(Exception):
            getattr(mlflow, flavour).autolog(disable=True)


__all__ = [
    "Run", "active", "artifact_dir", "check_store", "client", "create_run",
    "disable_autolog", "end_orphaned_runs", "end_run", "experiment_id", "find_runs",
    "reopen_run", "tracking_uri",
]
