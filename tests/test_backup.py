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
    assert checkpoints.fit_resume_epoch(root) == 2

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
