"""Runs: created, reopened and ended by id, and what a run records.

Runs are created through ``MlflowClient`` with explicit run ids, never through
the fluent "active run", so nested trial runs, resumed runs and any
``mlflow.autolog`` a user switched on cannot log into each other.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import mlflow

from cnnkeras.tracking import datasets
from cnnkeras.tracking.schema import ERROR_TAG, HOST_TAG, PARENT_TAG, PID_TAG, SPLITS
from cnnkeras.tracking.store import client

MAX_PARAM_LENGTH = 6000
BATCH = 100


def _param_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def _run_tags(tags: Mapping[str, Any]) -> list:
    return [mlflow.entities.RunTag(key, str(value)) for key, value in tags.items()]


class Run:
    """One MLflow run, addressed by id; what a training or tuning step records."""

    def __init__(self, run_id: str, *, params: Optional[Mapping[str, str]] = None):
        self.run_id = run_id
        self.client = client()
        self.pending: list = []  # queued log operations (futures) not yet waited for
        # the run's params when this process knows them all (it created the run), else None
        self.params: Optional[dict] = None if params is None else dict(params)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """The params the run does not have yet (MLflow params cannot change)."""
        existing = (self.client.get_run(self.run_id).data.params if self.params is None
                    else self.params)
        items = [
            mlflow.entities.Param(k, _param_text(v)) for k, v in params.items()
            if k not in existing and v is not None
        ]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start: start + BATCH])
        if self.params is not None:
            self.params.update((item.key, item.value) for item in items)

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None, *,
                    synchronous: bool = True, tags: Optional[Mapping[str, Any]] = None) -> None:
        """One ``log_batch`` per 100 metrics (the first carries ``tags``, if any);
        ``synchronous=False`` queues it on this module's logging thread (``flush`` waits
        for it).

        Not MLflow's own ``synchronous=False``: ending a run (``set_terminated``) shuts
        MLflow's queue down, and its worker then idles out a one-second ``get`` timeout,
        ~0.9 s at the end of every run (every trial of a search).
        """
        stamp = int(time.time() * 1000)
        items = [
            mlflow.entities.Metric(k, float(v), stamp, step or 0)
            for k, v in metrics.items() if v is not None
        ]
        tag_items = _run_tags(tags or {})
        for start in range(0, max(len(items), 1 if tag_items else 0), BATCH):
            batch = dict(metrics=items[start: start + BATCH], tags=tag_items if start == 0 else [])
            if synchronous:
                self.client.log_batch(self.run_id, **batch)
            else:
                self.pending.append(_logging_thread().submit(
                    self.client.log_batch, self.run_id, **batch))

    def flush(self) -> None:
        """Wait until every queued log operation of this run is stored."""
        while self.pending:
            self.pending.pop(0).result()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """All of ``tags`` in one ``log_batch`` (one store transaction)."""
        items = _run_tags(tags)
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_artifact(self, path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def log_dict(self, value: dict, name: str) -> None:
        self.client.log_text(self.run_id, json.dumps(value, indent=2, sort_keys=True,
                                                     default=str), name)

    def log_datasets(self, facts, splits: Sequence[str] = SPLITS) -> None:
        """Record ``facts`` (a ``cnnkeras.data.DatasetFacts``, or None: nothing) as the run's
        dataset inputs, one per split of ``splits``."""
        datasets.log_datasets(self.client, self.run_id, facts, splits)

    def log_inputs(self, inputs: Sequence) -> None:
        """Record dataset inputs made elsewhere (``datasets.inputs_to_copy``: another run's)."""
        if inputs:
            self.client.log_inputs(self.run_id, datasets=list(inputs))

    def callback(self):
        """A Keras callback logging every epoch's metrics to this run."""
        return _metrics_callback_class()(self)


@functools.cache
def _logging_thread() -> concurrent.futures.ThreadPoolExecutor:
    """One thread writing queued metrics in order, while training goes on."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                 thread_name_prefix="cnnkeras-mlflow")


@functools.cache
def _metrics_callback_class() -> type:
    import keras  # TensorFlow loads for training only, not for `compare` or `ui`

    class MetricsCallback(keras.callbacks.Callback):
        """Logs every epoch's ``logs`` (loss, accuracy, val_*) to the run, step = epoch."""

        def __init__(self, run: Run):
            super().__init__()
            self.run = run

        def on_epoch_end(self, epoch, logs=None):  # queued: the next epoch need not wait
            self.run.log_metrics(dict(logs or {}), step=epoch, synchronous=False)

        def on_train_end(self, logs=None):
            self.run.flush()

    return MetricsCallback


def create_run(exp_id: str, *, name: str, tags: Optional[Mapping[str, Any]] = None,
               parent: Optional[str] = None) -> Run:
    all_tags = {PID_TAG: os.getpid(), HOST_TAG: socket.gethostname(), **(tags or {})}
    if parent:
        all_tags[PARENT_TAG] = parent
    created = client().create_run(exp_id, run_name=name,
                                  tags={k: str(v) for k, v in all_tags.items()})
    return Run(created.info.run_id, params={})  # a new run has no params yet


def reopen_run(run_id: str, tags: Optional[Mapping[str, Any]] = None) -> Run:
    """Continue an existing run in this process (status RUNNING again, this pid, ``tags``)."""
    run = Run(run_id)
    run.client.update_run(run_id, status="RUNNING")
    run.set_tags({PID_TAG: os.getpid(), HOST_TAG: socket.gethostname(), **(tags or {})})
    return run


def end_run(run: Run, status: str = "FINISHED") -> None:
    run.flush()
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
        run.set_tags({ERROR_TAG: f"{type(err).__name__}: {err}"[:5000]})
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
