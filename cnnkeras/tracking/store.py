"""The tracking store: which one, checked before MLflow opens it, and its experiments.

A SQLite store is checked before MLflow opens it (MLflow would retry for minutes
and then raise a traceback), and created under a file lock, so commands starting
together on a fresh store do not race through its schema migrations.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Optional

import mlflow
import sqlalchemy
from mlflow.tracking import MlflowClient

from cnnkeras.tracking.schema import (
    ENDED_BY_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    HOST_TAG,
    PID_TAG,
    RUNNING,
    TRIAL_STATUS_TAG,
)

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
    for run in mlflow_client.search_runs([exp_id], filter_string=RUNNING,
                                         max_results=5000):
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or PID_TAG not in tags:
            continue
        pid = int(tags[PID_TAG])
        if pid != os.getpid() and not _alive(pid):
            mlflow_client.set_terminated(run.info.run_id, status="KILLED")
            mlflow_client.set_tag(run.info.run_id, ENDED_BY_TAG, "cleanup after process died")
            if tags.get(TRIAL_STATUS_TAG) == "RUNNING":  # a search trial cut off mid-way
                mlflow_client.set_tag(run.info.run_id, TRIAL_STATUS_TAG, "KILLED")
            ended.append(run.info.run_id)
    return ended


def cnnkeras_experiments() -> list:
    """The store's live experiments that cnnkeras created (tagged as model training)."""
    return [e for e in client().search_experiments()
            if e.tags.get(EXPERIMENT_KIND_TAG) == EXPERIMENT_KIND]
