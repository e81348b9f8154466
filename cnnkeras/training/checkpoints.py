"""Backups to resume from: a killed training run restarts at its last finished epoch.

``model.fit`` gets ``keras.callbacks.BackupAndRestore``; the custom multi-worker
loop gets ``EpochCheckpoint``, the same idea on ``tf.train.CheckpointManager``
(model, optimizer and epoch counter). Both live under ``backup_dir(config)``,
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

import contextlib
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import keras
import tensorflow as tf

from cnnkeras import distribute, ownership, tracking
from cnnkeras.config import ExperimentConfig, to_dict

RUN_FILE = "mlflow_run.json"
FIT_METADATA = "training_metadata.json"
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


def fit_callback(root: Path) -> keras.callbacks.BackupAndRestore:
    """Keras' own per-epoch backup for the ``model.fit`` route.

    Kept when training ends (``delete_checkpoint=False``): ``remove`` deletes it once the
    model is saved and logged.
    """
    return keras.callbacks.BackupAndRestore(str(root), save_freq="epoch",
                                            delete_checkpoint=False)


def fit_resume_epoch(root: Path) -> int:
    """The epoch ``BackupAndRestore`` will resume ``model.fit`` from (0: a fresh start)."""
    path = Path(root) / FIT_METADATA
    if not path.is_file():
        return 0
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (ValueError, KeyError):
        return 0


def remember_run(root: Path, run_id: str) -> None:
    """Note the MLflow run a backup belongs to, so a resumed run continues it."""
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / RUN_FILE).write_text(json.dumps({"run_id": run_id}))


def recall_run(root: Path) -> Optional[str]:
    """The MLflow run id an interrupted run left in ``root``, if it left a backup."""
    path = Path(root) / RUN_FILE
    has_backup = (Path(root) / FIT_METADATA).is_file() or tf.train.latest_checkpoint(str(root))
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
