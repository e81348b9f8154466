"""Training across worker processes on loopback, the launcher, and resuming after SIGKILL."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnkeras
from cnnkeras import data, launch, training
from cnnkeras.training import custom_loop

# One worker of a cluster: trains a small lecture CNN on the bundled digits under
# MultiWorkerMirroredStrategy, dumping its weights before and after training.
WORKER = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np, keras
    from cnnkeras import distribute, training
    from cnnkeras.config import (DataConfig, ExperimentConfig, ModelConfig, RuntimeConfig,
                                 TrainConfig)

    out, epochs, kill_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    config = ExperimentConfig(
        name="loopback", data=DataConfig(dataset="digits", image_size=(16, 16), channels=1,
                                         limit=128),
        model=ModelConfig("lecture_cnn", {"filters": (8, 16), "dense_units": 16}),
        train=TrainConfig(epochs=epochs, batch_size=16),
        runtime=RuntimeConfig(strategy="multi_worker", output_dir=os.path.join(out, "runs"),
                              verbose=1))
    strategy = distribute.create_strategy("multi_worker")
    name = distribute.worker_name(strategy)

    class Dump(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            np.savez(os.path.join(out, name + "_initial.npz"), *self.model.get_weights())

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == kill_after and name != "chief":
                os.kill(os.getpid(), signal.SIGKILL)

    try:
        result = training.train_experiment(config, strategy, callbacks=[Dump()])
    except ValueError as err:  # as `cnnkeras train` reports it: one line, then leave
        print(f"error: {err}", file=sys.stderr, flush=True)
        os._exit(2)
    np.savez(os.path.join(out, name + "_final.npz"), *result.model.get_weights())
    with open(os.path.join(out, name + ".json"), "w") as handle:
        json.dump({"history": result.history, "run_id": result.run_id,
                   "model_uri": result.model_uri}, handle)
""")


def weights(path):
    with np.load(path) as archive:
        return [archive[key] for key in sorted(archive.files, key=lambda k: int(k.split("_")[1]))]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """WORKER as a loopback cluster: ``run(workers, epochs, kill_after) -> (status, output)``."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.chdir(tmp_path)

    def run(workers, epochs, kill_after=0):
        out = io.StringIO()
        status = launch.launch([sys.executable, str(script), str(tmp_path), str(epochs),
                                str(kill_after)], workers=workers, out=out)
        return status, out.getvalue()

    return run


def mlflow_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("loopback")
    return client, client.search_runs([experiment.experiment_id])


def test_two_workers_train_one_epoch_to_identical_changed_weights(cluster, tmp_path):
    status, output = cluster(workers=2, epochs=1)
    assert status == 0, output[-3000:]
    chief, other = weights(tmp_path / "chief_final.npz"), weights(tmp_path / "worker_1_final.npz")
    initial = weights(tmp_path / "chief_initial.npz")
    assert len(chief) == len(other) == len(initial) == 8
    assert all(np.array_equal(a, b) for a, b in zip(chief, other, strict=True))
    assert all(not np.array_equal(a, b) for a, b in zip(chief, initial, strict=True))
    other_initial = weights(tmp_path / "worker_1_initial.npz")
    assert all(np.array_equal(a, b) for a, b in zip(initial, other_initial, strict=True))
    # Sharded, not duplicated: the two workers together saw each training example once.
    history = json.loads((tmp_path / "chief.json").read_text())["history"]
    assert history["examples"] == [128]
    # Only the chief logged: one run, two replicas, global batch 2 x 16.
    client, runs = mlflow_runs(tmp_path)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    params = runs[0].data.params
    assert (params["replicas"], params["workers"], params["global_batch_size"]) == ("2", "2", "32")
    assert runs[0].data.tags["cnnkeras.route"] == "custom_loop"
    assert json.loads((tmp_path / "chief.json").read_text())["run_id"] == runs[0].info.run_id
    assert json.loads((tmp_path / "worker_1.json").read_text())["run_id"] == ""
    (logged,) = client.search_logged_models([runs[0].info.experiment_id])
    assert logged.source_run_id == runs[0].info.run_id  # the chief's model, logged once
    assert json.loads((tmp_path / "chief.json").read_text())["model_uri"] == (
        f"models:/{logged.model_id}")
    assert json.loads((tmp_path / "worker_1.json").read_text())["model_uri"] == ""
    assert not list((tmp_path / "runs" / "loopback").glob("backup-*"))  # removed once done


@pytest.mark.slow  # a 2-worker cluster run twice; two_workers and the launch tests stay fast
def test_killed_worker_resumes_from_its_backup(cluster, tmp_path):
    status, output = cluster(workers=2, epochs=2, kill_after=1)
    assert status == 128 + signal.SIGKILL, output[-3000:]
    assert "[launch] worker 1 exited with status 137" in output
    assert not (tmp_path / "chief_final.npz").exists()
    backups = list((tmp_path / "runs" / "loopback").glob("backup-*"))
    assert len(backups) == 1 and (backups[0] / "ckpt-1.index").exists()
    assert (backups[0] / "workertemp_worker_1" / "ckpt-1.index").exists()
    # The chief survived its peer: one line naming the lost task, no traceback, run FAILED.
    chief_lines = [line for line in output.splitlines() if line.startswith("[worker 0]")]
    assert "Traceback" not in output
    (lost,) = [line for line in chief_lines if line.startswith("[worker 0] error:")]
    assert "the cluster lost a worker" in lost and "/job:worker/replica:0/task:1" in lost
    assert "task:0" not in lost
    _, runs = mlflow_runs(tmp_path)
    assert [run.info.status for run in runs] == ["FAILED"]

    status, output = cluster(workers=2, epochs=2)
    assert status == 0, output[-3000:]
    history = json.loads((tmp_path / "chief.json").read_text())["history"]
    assert len(history["loss"]) == 2  # epoch 1 read back from the run, epoch 2 trained now
    client, runs = mlflow_runs(tmp_path)
    assert len(runs) == 1  # the interrupted run was continued, not replaced
    run = runs[0]
    assert int(run.data.tags["cnnkeras.resumed_from_epoch"]) == 1
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1]
    chief, other = weights(tmp_path / "chief_final.npz"), weights(tmp_path / "worker_1_final.npz")
    assert all(np.array_equal(a, b) for a, b in zip(chief, other, strict=True))


def test_tf_config_names_the_cluster_and_this_task():
    config = launch.tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)
    assert config == {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                      "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="index=2"):
        launch.tf_config(["127.0.0.1:1", "127.0.0.1:2"], 2)


def test_free_ports_are_distinct():
    ports = launch.free_ports(3)
    assert len(set(ports)) == 3 and all(0 < port < 65536 for port in ports)


def test_launch_prefixes_each_workers_output_and_passes_its_tf_config():
    out = io.StringIO()
    code = "import json, os; print(json.loads(os.environ['TF_CONFIG'])['task']['index'])"
    assert launch.launch([sys.executable, "-c", code], workers=2, out=out) == 0
    assert sorted(out.getvalue().splitlines()) == [
        "[launch] worker 0 exited with status 0", "[launch] worker 1 exited with status 0",
        "[worker 0] 0", "[worker 1] 1"]


def test_launch_fails_when_a_worker_fails_and_stops_the_others(tmp_path):
    marker = tmp_path / "finished"
    code = textwrap.dedent(f"""
        import json, os, sys, time
        if json.loads(os.environ['TF_CONFIG'])['task']['index'] == 1:
            sys.exit(3)
        time.sleep(120)
        open({str(marker)!r}, 'w').close()
    """)
    assert launch.launch([sys.executable, "-c", code], workers=2, out=io.StringIO()) == 3
    assert not marker.exists()


def test_launch_command_line_rejects_a_missing_command(capsys):
    assert launch.main(["--workers", "2"]) == 2
    assert "Give the command" in capsys.readouterr().err


def test_launcher_runs_as_a_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cnnkeras.launch", "--workers", "1", "--", sys.executable, "-c",
         "import os; print('TF_CONFIG' in os.environ)"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "[worker 0] True"


@pytest.mark.parametrize("architecture, spec, size", [
    ("lecture_cnn", "digits", (16, 16)),
    ("atrous_segmenter", "segmentation:digits", (12, 12)),  # one target per pixel
])
def test_custom_loop_loss_and_accuracy_match_keras_evaluate(architecture, spec, size):
    """The loop's totals are means per target, as Keras computes them, for classes and masks."""
    keras.utils.set_random_seed(0)
    plan = data.SplitPlan(0.1, 0.1, seed=0, limit=40)
    loaded = data.load(spec, image_size=size, channels=1, batch_size=16, plan=plan)
    model = cnnkeras.build(architecture, input_shape=(*size, 1), num_classes=loaded.num_classes)
    training.compile_model(model, optimizer="adam", learning_rate=1e-3)
    strategy = tf.distribute.get_strategy()
    history = custom_loop.fit(model, strategy, loaded.train, epochs=1)
    assert history["examples"] == [40]
    ours = custom_loop.evaluate(model, strategy, loaded.train)
    theirs = model.evaluate(loaded.train, return_dict=True, verbose=0)
    assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-6)
    assert 0.0 <= ours["accuracy"] <= 1.0


def test_the_custom_loop_follows_a_cosine_schedule():
    keras.utils.set_random_seed(0)
    loaded = data.load("digits", image_size=(16, 16), channels=1, batch_size=16,
                       plan=data.SplitPlan(0.1, 0.1, seed=0, limit=32))
    model = cnnkeras.build("lecture_cnn", input_shape=(16, 16, 1), num_classes=10)
    training.compile_model(model, optimizer="sgd", learning_rate=0.004)
    history = custom_loop.fit(model, tf.distribute.get_strategy(), loaded.train, epochs=3,
                              callbacks=training.schedule_callbacks("cosine", 0.004, 3))
    assert history["learning_rate"] == pytest.approx([0.004, 0.003, 0.001])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
