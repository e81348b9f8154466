"""Backups to resume from: per-epoch checkpoints, and model.fit resuming after a crash."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cnnkeras
from cnnkeras import tracking, training
from cnnkeras.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    RuntimeConfig,
    TrainConfig,
    apply_overrides,
)
from cnnkeras.training import checkpoints


def small_config(tmp_path, epochs=3) -> ExperimentConfig:
    return ExperimentConfig(
        name="backup_check",
        data=DataConfig(dataset="digits", image_size=(16, 16), channels=1, limit=96),
        model=ModelConfig("lecture_cnn", {"filters": (4, 8), "dense_units": 8}),
        train=TrainConfig(epochs=epochs, batch_size=32),
        runtime=RuntimeConfig(output_dir=str(tmp_path / "runs"), verbose=0),
    )


def test_backup_dir_is_keyed_on_the_config_but_not_on_verbosity(tmp_path):
    config = small_config(tmp_path)
    root = checkpoints.backup_dir(config)
    assert root.parent == tmp_path / "runs" / "backup_check"
    assert root.name == f"backup-{checkpoints.fingerprint(config)}" and len(root.name) == 19
    assert checkpoints.backup_dir(apply_overrides(config, ["runtime.verbose=2"])) == root
    assert checkpoints.backup_dir(apply_overrides(config, ["train.learning_rate=0.01"])) != root


def make_model(seed):
    keras.utils.set_random_seed(seed)
    model = cnnkeras.build("lecture_cnn", input_shape=(16, 16, 1), num_classes=10,
                           filters=(4, 8), dense_units=8)
    return training.compile_model(model, optimizer="adam", learning_rate=1e-3)


def epochs_done(root) -> int:
    """The epochs the ``model.fit`` backup in ``root`` has done (0: none)."""
    saved = checkpoints.read_backup(root)
    return int(saved["epochs_done"]) if saved else 0


def test_epoch_checkpoint_restores_weights_optimizer_and_epoch(tmp_path):
    images = np.random.default_rng(0).random((8, 16, 16, 1), dtype=np.float32)
    labels = np.arange(8) % 10
    model = make_model(1)
    model.train_on_batch(images, labels)
    saved = checkpoints.EpochCheckpoint(tmp_path / "ckpt", model=model, optimizer=model.optimizer)
    assert saved.restore() == 0  # nothing saved yet
    saved.save(2)

    fresh = make_model(2)
    assert not np.array_equal(fresh.get_weights()[0], model.get_weights()[0])
    loaded = checkpoints.EpochCheckpoint(tmp_path / "ckpt", model=fresh, optimizer=fresh.optimizer)
    assert loaded.restore() == 2
    pairs = zip(model.get_weights(), fresh.get_weights(), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
    assert int(fresh.optimizer.iterations.numpy()) == 1
    assert all(np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(model.optimizer.variables, fresh.optimizer.variables, strict=True))


def test_fit_backup_restores_weights_optimizer_and_epoch(tmp_path):
    images = np.random.default_rng(0).random((16, 16, 16, 1), dtype=np.float32) * 255
    labels = np.arange(16) % 10
    model = make_model(1)
    assert checkpoints.restore_fit(tmp_path, model) == 0  # nothing saved yet
    model.fit(images, labels, batch_size=8, epochs=2, verbose=0,
              callbacks=[checkpoints.fit_callback(tmp_path)])
    assert epochs_done(tmp_path) == 2

    fresh = make_model(2)
    assert checkpoints.restore_fit(tmp_path, fresh) == 2
    assert all(np.array_equal(a, b)
               for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True))
    assert int(fresh.optimizer.iterations.numpy()) == 4
    assert all(np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(model.optimizer.variables, fresh.optimizer.variables, strict=True))


def test_a_write_that_fails_midway_leaves_the_previous_backup_whole(tmp_path, monkeypatch):
    model = make_model(1)
    backup = checkpoints.fit_callback(tmp_path)
    backup.set_model(model)
    model.optimizer.build(model.trainable_variables)
    backup.on_epoch_end(0)
    backup.wait()

    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoints.np, "savez", half_written)
    backup.on_epoch_end(1)
    with pytest.raises(OSError, match="No space left"):
        backup.close()
    assert epochs_done(tmp_path) == 1
    assert checkpoints.restore_fit(tmp_path, make_model(2)) == 1


def test_an_unreadable_backup_is_named_with_the_way_out(tmp_path):
    (tmp_path / checkpoints.FIT_BACKUP).write_bytes(b"not a backup")
    with pytest.raises(ValueError, match=r"backup.npz cannot be read .*delete .* to start over"):
        checkpoints.restore_fit(tmp_path, make_model(1))
    # a whole archive that lacks an array it announces (count 2, one value)
    np.savez(tmp_path / checkpoints.FIT_BACKUP, epochs_done=1, count=2, v0=np.zeros(3))
    with pytest.raises(ValueError, match=r"backup.npz cannot be read \('no v1'\); delete"):
        checkpoints.restore_fit(tmp_path, make_model(1))


class Crash(keras.callbacks.Callback):
    """Fails the run once ``after`` epochs are done (after their backup is written)."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise RuntimeError("simulated crash")


def test_fit_resumes_from_its_backup_and_continues_the_same_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    config = small_config(tmp_path, epochs=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        training.train_experiment(config, callbacks=(Crash(after=2),))
    root = checkpoints.backup_dir(config)
    assert epochs_done(root) == 2

    result = training.train_experiment(config)
    assert len(result.history["loss"]) == 3  # epochs 1-2 read back from the run, 3 trained now
    run = tracking.client().get_run(result.run_id)
    assert run.data.tags["cnnkeras.resumed_from_epoch"] == "2"
    assert run.info.status == "FINISHED"
    runs = tracking.find_runs(run.info.experiment_id)
    assert [r.info.run_id for r in runs] == [result.run_id]  # continued, not a second run
    steps = [m.step for m in tracking.client().get_metric_history(result.run_id, "loss")]
    assert steps == [0, 1, 2]
    assert not root.exists()  # deleted once training finished


KILLER = """
import os, signal, sys
import keras
from cnnkeras import training
from cnnkeras.config import (DataConfig, ExperimentConfig, ModelConfig, RuntimeConfig,
                             TrainConfig)

class KillAfterTheLastEpoch(keras.callbacks.Callback):
    def on_train_end(self, logs=None):  # the last epoch is backed up; nothing is saved yet
        os.kill(os.getpid(), signal.SIGKILL)

config = ExperimentConfig(
    name="backup_check",
    data=DataConfig(dataset="digits", image_size=(16, 16), channels=1, limit=96),
    model=ModelConfig("lecture_cnn", {"filters": (4, 8), "dense_units": 8}),
    train=TrainConfig(epochs=3, batch_size=32),
    runtime=RuntimeConfig(output_dir=sys.argv[1], verbose=0))
training.train_experiment(config, callbacks=(KillAfterTheLastEpoch(),))
"""


def test_a_kill_between_the_last_epoch_and_the_save_is_finished_by_the_rerun(tmp_path,
                                                                           monkeypatch):
    import signal
    import subprocess
    import sys

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "runs")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    config = small_config(tmp_path, epochs=3)
    root = checkpoints.backup_dir(config)
    assert epochs_done(root) == 3  # all epochs done, the model never saved
    (first,) = tracking.find_runs(tracking.experiment_id(config.mlflow_experiment))
    assert not list((tmp_path / "runs").glob("*/*/model.keras"))

    result = training.train_experiment(config)  # the same command again
    assert result.run_id == first.info.run_id  # finished in the same run
    run = tracking.client().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["cnnkeras.resumed_from_epoch"] == "3"
    steps = [m.step for m in tracking.client().get_metric_history(result.run_id, "loss")]
    assert steps == [0, 1, 2]  # no epoch trained twice
    assert len(result.history["loss"]) == 3  # the curves cover the epochs of the killed process
    assert result.model_uri.startswith("models:/") and "test_accuracy" in run.data.metrics
    assert not root.exists()  # the backup went only once the model was saved and logged


def test_a_second_process_on_the_same_backup_is_refused_naming_the_first(tmp_path,
                                                                         monkeypatch, capsys):
    import subprocess
    import sys

    from cnnkeras.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    args = ["train", "lecture_cnn", "--dataset", "digits", "--epochs", "1", "--set",
            "data.limit=64", "--set", "runtime.verbose=0"]
    from cnnkeras.cli import api

    config = api.resolve(  # what `cnnkeras train lecture_cnn ...` resolves to
        api.base_config("lecture_cnn"), ["data.limit=64", "runtime.verbose=0"],
        dataset="digits", epochs=1)
    root = checkpoints.backup_dir(config)
    # the holder takes the backup's lock as claim() does, without importing TensorFlow
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom cnnkeras.ownership import hold\n"
         f"with hold({str(root)!r}, {checkpoints.LOCK_FILE!r}, str):\n"
         "    print('held', flush=True)\n    time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"PID {holder.pid}" in err[0], err
        assert not tracking.find_runs(tracking.experiment_id("cnnkeras-train"))  # no run made
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0  # the lock went with its process
