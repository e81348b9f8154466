"""Backups to resume from: a killed training run restarts at its last finished epoch.

``model.fit`` gets ``FitBackup``, the state ``keras.callbacks.BackupAndRestore`` keeps
(model, optimizer and the epochs done), copied at each epoch's end and written by a
thread of its own while the next epoch trains; the custom multi-worker loop gets
``EpochCheckpoint``, the same idea on ``tf.train.CheckpointManager``. Both live under
``backup_dir(config)``,
which is keyed on the resolved config, so rerunning the same command resumes
and a changed config never loads a backup made for another model.

A backup belongs to one process at a time: ``claim`` locks its folder
(``fcntl.flock``, released by the kernel however the process ends), so a second
identical command started meanwhile is refused with the first one's PID instead
of training on from the first one's epochs. A backup is deleted only after the
model is saved and logged: a process killed between the last epoch and the save
is finished by the next run of the same command, in the same MLflow run.

In a cluster every worker writes a checkpoint (TensorFlow requires all of them
to take part in saving): the chief into the backup directory, the others into
``workertemp_<task>`` inside it. Each restores its own, and the workers check
that they agree on the epoch before training on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from cnnkeras import distribute, ownership, tracking
from cnnkeras.config import ExperimentConfig, to_dict

RUN_FILE = "mlflow_run.json"
FIT_BACKUP = "backup.npz"
LOCK_FILE = "owner.lock"


def fingerprint(config: ExperimentConfig) -> str:
    """12 hex digits naming the config (console verbosity left out)."""
    fields = to_dict(config)
    fields["runtime"].pop("verbose", None)
    text = json.dumps(fields, sort_keys=True, default=list)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def backup_dir(config: ExperimentConfig) -> Path:
    """``<output_dir>/<experiment>/backup-<fingerprint>``: where an interrupted run resumes from."""
    return Path(config.runtime.output_dir) / config.name / f"backup-{fingerprint(config)}"


def write_dir(root: Path, strategy: tf.distribute.Strategy) -> Path:
    """The chief writes ``root``; any other worker ``root/workertemp_<task>``."""
    if distribute.is_chief(strategy):
        return Path(root)
    return Path(root) / f"workertemp_{distribute.worker_name(strategy)}"


def claim(directory: Path) -> contextlib.AbstractContextManager:
    """Hold ``directory`` (created if missing) for this process, or refuse in one line."""
    return ownership.hold(directory, LOCK_FILE, lambda owner: (
        f"Another process (PID {owner}) is training this same configuration and owns "
        f"its backup {directory}. Wait for it to finish, or change the config (e.g. "
        "--set runtime.seed=...) to train a second copy."))


def fit_callback(root: Path) -> "FitBackup":
    """The per-epoch backup of the ``model.fit`` route.

    Kept when training ends: ``remove`` deletes it once the model is saved and logged.
    """
    return FitBackup(root)


def fit_state(model: keras.Model) -> list:
    """What a resumed ``fit`` needs: the model's variables, then its optimizer's."""
    return [*model.variables, *model.optimizer.variables]


def read_backup(root: Path) -> Optional[dict]:
    """The arrays of the ``model.fit`` backup in ``root``, all that ``write_backup`` writes;
    None when there is none."""
    path = Path(root) / FIT_BACKUP
    if not path.is_file():
        return None
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not an .npz archive")
        with np.load(path, allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
        count = int(arrays["count"])
        missing = [key for key in ("epochs_done", *(f"v{i}" for i in range(count)))
                   if key not in arrays]
        if missing:
            raise KeyError(f"no {', '.join(missing[:3])}")
        return arrays
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"The backup {path} cannot be read ({err}); delete {root} to start "
                         "over.") from None


def restore_fit(root: Path, model: keras.Model) -> int:
    """Load the backup in ``root`` into ``model`` and its optimizer (call in the strategy's
    scope); the epochs it had done, 0 when there is none."""
    saved = read_backup(root)
    if saved is None:
        return 0
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    variables = fit_state(model)
    if int(saved["count"]) != len(variables):
        raise ValueError(f"The backup in {root} holds {int(saved['count'])} variables and this "
                         f"model and optimizer {len(variables)}; delete {root} to start over.")
    for index, variable in enumerate(variables):
        variable.assign(saved[f"v{index}"])
    return int(saved["epochs_done"])


def write_backup(path: Path, values: list, epochs_done: int) -> None:
    """``values`` and the epoch count into ``path``, whole or not at all: a kill mid-write
    leaves the previous backup in place."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(file, epochs_done=epochs_done, count=len(values),
                 **{f"v{index}": value for index, value in enumerate(values)})
    os.replace(partial, path)


class FitBackup(keras.callbacks.Callback):
    """Model and optimizer state at every epoch end, written while the next epoch trains.

    The values are copied when the epoch ends (70 ms for resnet18's 134 MB with Adam's
    state, on 2 cores); Keras' ``BackupAndRestore`` spends 0.3-0.6 s there writing h5.
    ``wait`` returns once the last copy is on disk; training's end waits for it, and
    ``KerasFit.fit`` ``close``s it however ``fit`` ends.
    """

    def __init__(self, root: Path):
        super().__init__()
        self.path = Path(root) / FIT_BACKUP
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.pending: Optional[concurrent.futures.Future] = None

    def on_epoch_end(self, epoch, logs=None):
        self.wait()
        values = [np.array(variable) for variable in fit_state(self.model)]
        self.pending = self.writer.submit(write_backup, self.path, values, epoch + 1)

    def on_train_end(self, logs=None):
        self.wait()

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last write, then let the writing thread go."""
        try:
            self.wait()
        finally:
            self.writer.shutdown()


def remember_run(root: Path, run_id: str) -> None:
    """Note the MLflow run a backup belongs to, so a resumed run continues it."""
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / RUN_FILE).write_text(json.dumps({"run_id": run_id}))


def recall_run(root: Path) -> Optional[str]:
    """The MLflow run id an interrupted run left in ``root``, if it left a backup."""
    path = Path(root) / RUN_FILE
    has_backup = (Path(root) / FIT_BACKUP).is_file() or tf.train.latest_checkpoint(str(root))
    if not path.is_file() or not has_backup:
        return None
    try:
        return json.loads(path.read_text())["run_id"]
    except (ValueError, KeyError):
        return None


def continue_run(root: Path, resumed_epoch: int) -> Optional[tracking.Run]:
    """When resuming, the interrupted MLflow run reopened (RUNNING again); else None.

    Call after ``tracking.experiment_id``, which ends the dead process's run as KILLED.
    """
    if not resumed_epoch:
        return None
    print(f"Resuming after epoch {resumed_epoch} from the backup in {root} "
          "(delete that folder to start over).", file=sys.stderr, flush=True)
    previous = recall_run(root)
    return tracking.reopen_run(previous) if previous else None


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


class EpochCheckpoint:
    """Model, optimizer and the count of finished epochs, saved at every epoch end.

    ``restore()`` loads the latest save (if any) into the live model and optimizer and
    returns the epoch to start from; ``save(epochs_done)`` writes a new one.
    """

    def __init__(self, directory: Path, *, model: keras.Model,
                 optimizer: keras.optimizers.Optimizer, max_to_keep: int = 2):
        self.directory = Path(directory)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.directory), max_to_keep=max_to_keep)
        self.optimizer = optimizer
        self.model = model

    def restore(self) -> int:
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epoch.numpy())

    def save(self, epochs_done: int) -> str:
        self.epoch.assign(epochs_done)
        return self.manager.save(checkpoint_number=epochs_done)
