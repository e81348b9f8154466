"""`cnnkeras train` end to end on the embedded digits, and what lands in MLflow."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_digits

import cnnkeras
from cnnkeras import tracking
from cnnkeras.cli import main
from cnnkeras.data.images import fit_image
from cnnkeras.tracking import models


def only_run(uri, experiment="cnnkeras-train"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, exp, runs[0]


def test_train_one_epoch_on_digits_records_everything(tracking_store, capsys, artifact_paths):
    code = main(["train", "lecture_cnn", "--dataset", "digits", "--epochs", "1",
                 "--set", "runtime.verbose=0", "--register"])
    assert code == 0
    client, exp, run = only_run(tracking_store)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "lecture_cnn digits"
    params = run.data.params
    assert params["model.architecture"] == "lecture_cnn"
    assert params["train.epochs"] == "1"
    assert params["parameters"] == "137660"
    assert params["flops_per_image"] == "3278700"  # 2 x multiply-adds, inspection.analysis
    assert params["data.size.train"] == "1257"
    assert params["data.skipped_files"] == "0"
    metrics = run.data.metrics
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "test_accuracy"} <= set(metrics)
    assert metrics["test_accuracy"] > 0.5  # one epoch on digits already learns
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 1
    inputs = run.inputs.dataset_inputs  # one per split (test_dataset_inputs: their fields)
    assert sorted(i.dataset.name for i in inputs) == ["digits"] * 3
    assert len({i.dataset.digest for i in inputs}) == 3
    assert set(artifact_paths(client, run.info.run_id)) >= {
        "config.json", "model_summary.txt", "plots/learning_curves.png",
        "plots/confusion_matrix.png", "plots/filters.png"}
    out = capsys.readouterr().out
    assert "test: accuracy" in out and f"model: runs:/{run.info.run_id}/model" in out
    # The model is the run's MLflow model, its only copy; registered as the experiment's name
    (logged,) = client.search_logged_models([exp.experiment_id])
    assert logged.source_run_id == run.info.run_id and logged.name == "model"
    assert "registered: models:/cnnkeras-train/1" in out
    version = client.get_model_version("cnnkeras-train", "1")
    assert version.run_id == run.info.run_id
    assert float(version.tags["accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    assert not list(Path.cwd().rglob("runs/**/*.keras"))
    import mlflow

    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert list(model.metadata.metadata["class_names"]) == [str(i) for i in range(10)]


def test_without_a_validation_split_fit_neither_validates_nor_warns(tracking_store):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", "lecture_cnn", "--dataset", "digits", "--epochs", "2",
                     "--set", "data.validation_fraction=0", "--set", "data.limit=64",
                     "--set", "runtime.verbose=0"])
    assert code == 0
    _, _, run = only_run(tracking_store)
    assert run.info.status == "FINISHED" and run.data.params["data.size.validation"] == "0"
    assert "loss" in run.data.metrics
    assert not [name for name in run.data.metrics if name.startswith("val_")]
    assert not [w for w in caught if "ran out of data" in str(w.message)]


def test_options_that_do_not_fit_fail_in_one_line_before_any_run(tracking_store, capsys,
                                                                 tmp_path):
    code = main(["train", "lecture_cnn", "--dataset", "digits", "--epochs", "1",
                 "--set", "model.options.kernel_sizes=29", "--set", "runtime.verbose=0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "block1_conv: input 28x28: kernel_size=29" in lines[0]
    experiment = MlflowClient(tracking_store).get_experiment_by_name("cnnkeras-train")
    assert experiment is None  # no run, not even its experiment
    assert not (tmp_path / "runs").exists()  # nor a backup folder


def test_a_crash_inside_a_run_ends_it_failed(tracking_store, capsys, monkeypatch):
    from cnnkeras.training import loops

    def crash(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(loops.KerasFit, "evaluate", crash)
    with pytest.raises(RuntimeError):
        main(["train", "lecture_cnn", "--dataset", "digits", "--epochs", "1",
              "--set", "data.limit=64", "--set", "runtime.verbose=0"])
    _, _, run = only_run(tracking_store)
    assert run.info.status == "FAILED"
    assert run.data.tags["cnnkeras.error"] == "RuntimeError: the disk is full"


@pytest.mark.parametrize("argv, message", [
    (["train", "lenet0", "--dataset", "digits"], "Unknown architecture 'lenet0'. Known"),
    (["train", "lecture_cnn", "--dataset", "imagenet"], "Unknown dataset spec 'imagenet'"),
    (["train", "lecture_cnn", "--set", "train.epoch=1"], "Unknown config key 'train.epoch'"),
])
def test_user_mistakes_are_one_line_and_exit_2(tracking_store, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0]


def wait_for_running_run(uri, timeout=90):
    client = MlflowClient(uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name("cnnkeras-train")
        if exp:
            runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
            if runs and client.get_metric_history(runs[0].info.run_id, "loss"):
                return client, exp, runs[0]
        time.sleep(0.5)
    raise AssertionError("no training run reached its first epoch")


@pytest.mark.parametrize("sig, status", [
    (signal.SIGTERM, "KILLED"),
    pytest.param(signal.SIGKILL, "KILLED", marks=pytest.mark.slow)])  # a subprocess each
def test_interrupted_runs_never_stay_running(tracking_store, sig, status):
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkeras", "train", "lecture_cnn", "--dataset", "digits",
         "--epochs", "200", "--set", "runtime.verbose=0"],
        env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client, exp, run = wait_for_running_run(tracking_store)
        process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        process.kill()
    if sig == signal.SIGKILL:  # nothing ran at exit: the next start cleans up
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        assert tracking.end_orphaned_runs(exp.experiment_id) == [run.info.run_id]
    assert client.get_run(run.info.run_id).info.status == status


def test_a_segmenter_on_image_labels_says_which_dataset_fits(tracking_store, capsys):
    assert main(["train", "atrous_segmenter", "--dataset", "digits", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "needs (height, width) label masks" in err and "segmentation:digits" in err


def raw_digits() -> tuple:
    """scikit-learn's 1,797 digits as a user holds them: uint8 [0, 255] pixels (the set's
    0-16 levels stretched), fitted to 28x28 as any picture is; and their labels."""
    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype("uint8")[..., None]
    images = np.stack([fit_image(image, size=(28, 28), channels=1, fit="resize").numpy()
                       for image in pixels])
    return images.astype("float32"), digits.target


def test_a_trained_model_takes_raw_0_255_pixels_as_its_metadata_says(tracking_store):
    """The one model contract: the logged model scales its own pixels, so raw [0, 255] images
    are classified as well as the run's test accuracy says; [0, 1] images are not."""
    result = cnnkeras.train("lecture_cnn", dataset="digits", epochs=1,  # 7 steps at batch 32
                            overrides=["data.limit=200", "runtime.verbose=0",
                                       "train.batch_size=32"])
    ref = f"runs:/{result.run_id}/model"
    assert models.model_metadata(ref)["input_range"] == [0, 255]
    assert models.load(ref).input_range == (0, 255)
    model = cnnkeras.load_model(ref)
    assert model.get_layer("pixels").scale == pytest.approx(1 / 255)
    images, labels = raw_digits()
    accuracy = np.mean(model.predict(images, verbose=0).argmax(-1) == labels)
    tested = result.test_metrics["accuracy"]
    assert accuracy >= 0.5 and accuracy >= tested - 0.1, (accuracy, tested)
    scaled_twice = np.mean(model.predict(images / 255, verbose=0).argmax(-1) == labels)
    assert scaled_twice < 0.3  # the old [0, 1] convention starves the model


def test_a_cosine_schedule_anneals_the_rate_by_epoch_and_logs_it(tracking_store):
    """Epoch e of E trains at rate * (1 + cos(pi e / E)) / 2: 1, 0.75 and 0.25 of it for E=3."""
    result = cnnkeras.train("lecture_cnn", dataset="digits", epochs=3, overrides=[
        "train.lr_schedule=cosine", "train.learning_rate=0.004", "data.limit=64",
        "runtime.verbose=0"])
    rates = [0.004, 0.003, 0.001]
    assert result.history["learning_rate"] == pytest.approx(rates)
    assert tracking.metric_history(result.run_id, "learning_rate") == [
        (0, pytest.approx(0.004)), (1, pytest.approx(0.003)), (2, pytest.approx(0.001))]
    from cnnkeras.training import schedule_callbacks

    assert schedule_callbacks("constant", 0.004, 3) == []


def test_a_resumed_fit_continues_the_cosine_from_its_epoch():
    """A fit resumed at epoch 2 of 3 (``initial_epoch``, as a backup resumes) trains at the
    third epoch's rate, not the first's."""
    from cnnkeras.training import compile_model, schedule_callbacks

    digits = load_digits()
    images = np.stack([fit_image(image[..., None] * 16.0, size=(16, 16), channels=1,
                                 fit="resize") for image in digits.images[:64]])
    images = images.astype("float32")
    model = compile_model(cnnkeras.build("lecture_cnn", input_shape=(16, 16, 1),
                                         num_classes=10), optimizer="adam", learning_rate=0.004)
    history = model.fit(images, digits.target[:64], epochs=3, initial_epoch=2, verbose=0,
                        callbacks=schedule_callbacks("cosine", 0.004, 3)).history
    assert history["learning_rate"] == pytest.approx([0.001])


@pytest.mark.parametrize("name", ["lecture_cnn", "atrous_segmenter"])
def test_a_compiled_model_traces_its_train_step_once_and_counts_no_made_up_example(name):
    """compile_model creates the optimizer's and metrics' variables; without them the first
    trace creates them and tf.function traces the step again."""
    from cnnkeras.training import compile_model, task_metrics

    model = cnnkeras.build(name, input_shape=(12, 12, 1), num_classes=3)
    compile_model(model, optimizer="adam", learning_rate=1e-3, metrics=task_metrics(name, 3))
    assert all(value == 0 for value in keras.tree.flatten(model.get_metrics_result()))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (32, 12, 12, 1)).astype("float32")
    labels = rng.integers(0, 3, (32, *model.output_shape[1:-1]))
    traced, step = [], model.train_step
    model.train_step = lambda data: (traced.append(data), step(data))[1]
    history = model.fit(images, labels, batch_size=8, epochs=2, verbose=0).history
    assert len(traced) == 1
    assert len(history["loss"]) == 2 and all(np.isfinite(history["loss"]))
