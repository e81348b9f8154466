"""`run_search` in-process on tiny digits: the MLflow run tree, params, metrics, artifacts,
best-trial tags, geometry rejections, the four tuners and a small ResNet search."""

import csv
import shutil

import mlflow
import pytest
from mlflow.tracking import MlflowClient

import cnnkeras
import experiments
from cnnkeras.analysis import model_flops
from cnnkeras.config import apply_overrides
from tuning.search import run_search

TINY = ("train.epochs=1", "data.limit=100", "runtime.verbose=0")


def search(tmp_path, *overrides):
    config = apply_overrides(experiments.get("lecture_digits"),
                             [*TINY, f"tune.directory={tmp_path / 'tuner'}", *overrides])
    return run_search(config)


def children(client, result, parent_id=None):
    parent_id = parent_id or result.parent_run_id
    return client.search_runs([result.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent_id}'")


def artifacts(client, run_id, path=None):
    found = []
    for item in client.list_artifacts(run_id, path):
        found.extend(artifacts(client, run_id, item.path) if item.is_dir else [item.path])
    return found


@pytest.fixture(scope="module")
def three_trials(tmp_path_factory, template_store):
    """One random search of three trials, shared by the run-tree tests below."""
    folder = tmp_path_factory.mktemp("three")
    shutil.copyfile(template_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        result = search(folder, "tune.max_trials=3")
    return MlflowClient(uri), result, folder


def test_three_trials_are_three_nested_runs_under_one_finished_parent(three_trials):
    client, result, _ = three_trials
    everything = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trials = children(client, result)
    assert len(everything) == 4 and len(trials) == 3
    assert sorted(r.data.tags["trial_id"] for r in trials) == ["0", "1", "2"]
    assert {r.info.status for r in everything} <= {"FINISHED", "FAILED"}
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["cnnkeras.kind"] == "search"
    assert parent.data.tags["tuner"] == "random"
    assert parent.data.params["tune.max_trials"] == "3"
    assert parent.data.metrics["trials_total"] == 3
    assert {r.info.run_name for r in trials} == {f"lecture_cnn digits trial {i}" for i in "012"}


def test_each_trial_logs_its_hyperparameters_config_parameter_count_and_metrics(three_trials):
    client, result, _ = three_trials
    rows = result.summary.trials.set_index("trial_id")
    for run in children(client, result):
        params, trial_id = run.data.params, run.data.tags["trial_id"]
        filters = (int(params["filters_1"]), int(params["filters_2"]))
        assert params["model.options.filters"] == f"{filters[0]},{filters[1]}"
        assert params["train.optimizer"] == params["optimizer"] == rows.loc[trial_id, "optimizer"]
        assert params["model.architecture"] == "lecture_cnn"
        if run.data.tags["trial_status"] == "COMPLETED":
            assert run.info.status == "FINISHED"
            built = cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10,
                                   **{"filters": filters,
                                      "kernel_sizes": (int(params["kernel_size_1"]),
                                                       int(params["kernel_size_2"])),
                                      "strides": (int(params["strides_1"]),
                                                  int(params["strides_2"])),
                                      "paddings": (params["padding_1"], params["padding_2"]),
                                      "dense_units": int(params["dense_units"]),
                                      "dropout": float(params["dropout"]),
                                      "batch_norm": params["batch_norm"] == "True"})
            assert int(params["parameters"]) == built.count_params()
            assert int(params["flops_per_image"]) == model_flops(built)
            metrics = run.data.metrics
            assert {"loss", "val_accuracy", "final_val_accuracy", "best_val_loss"} <= set(metrics)
            assert metrics["epochs_run"] == 1
            assert metrics["final_val_accuracy"] == pytest.approx(rows.loc[trial_id, "score"])


def test_the_parent_holds_the_trial_table_the_plot_and_the_best_trial(three_trials):
    client, result, folder = three_trials
    parent = client.get_run(result.parent_run_id)
    assert {"trials.csv", "plots/parallel_coordinates.png", "config.json"} <= set(
        artifacts(client, parent.info.run_id))
    table = list(csv.DictReader(open(client.download_artifacts(
        parent.info.run_id, "trials.csv", str(folder)))))
    assert [row["trial_id"] for row in table] == ["0", "1", "2"]
    completed = [row for row in table if row["status"] == "COMPLETED"]
    best = max(completed, key=lambda row: float(row["score"]))
    assert parent.data.tags["best_trial_id"] == best["trial_id"]
    assert parent.data.tags["best_run_id"] == best["run_id"]
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(float(best["score"]))
    assert client.get_run(best["run_id"]).data.tags["best_trial"] == "true"
    assert not {"loss", "val_loss"} & set(parent.data.metrics)  # epochs belong to trials


def test_one_trial_two_executions_with_autolog_on_stay_in_their_own_runs(store,
                                                                        tmp_path):
    mlflow.set_tracking_uri(store)
    mlflow.tensorflow.autolog()
    try:
        result = search(tmp_path, "tune.max_trials=1", "tune.tuner=grid",
                        "tune.executions_per_trial=2", "train.epochs=2")
    finally:
        mlflow.tensorflow.autolog(disable=True)
    client = MlflowClient(store)
    everything = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (trial,) = children(client, result)
    executions = children(client, result, trial.info.run_id)
    assert len(everything) == 4  # parent, trial, two executions: nothing from autolog
    assert sorted(r.data.tags["execution"] for r in executions) == ["1", "2"]
    for run in executions:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1]
    assert trial.data.metrics["epochs_run"] == 2
    assert trial.data.tags["trial_status"] == "COMPLETED"
    parent = client.get_run(result.parent_run_id)
    assert not {"loss", "accuracy", "val_loss"} & set(parent.data.metrics)
    assert parent.data.tags["best_trial_id"] == "0"


def test_a_misfit_geometry_is_a_failed_trial_naming_the_layer(store, tmp_path,
                                                              capsys):
    # grid's first trial is every default: at 8x8 the maps go 6, 3, 1, then a 2x2 pool
    result = search(tmp_path, "tune.max_trials=1", "tune.tuner=grid", "data.image_size=8x8")
    client = MlflowClient(store)
    (trial,) = children(client, result)
    assert trial.info.status == "FAILED"
    assert trial.data.tags["trial_status"] == "FAILED"
    reason = trial.data.tags["failure_reason"]
    assert reason.startswith("rejected by geometry: block2_pool: input 1x1")
    assert "output would be 0" in reason
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_rejected_geometry"] == 1
    assert "best_trial_id" not in parent.data.tags
    printed = capsys.readouterr().out
    assert "1 failed (1 rejected by geometry)" in printed
    assert "trial 0: rejected by geometry: block2_pool" in printed


# random runs in `three_trials`, grid in the execution and ResNet tests
@pytest.mark.parametrize("tuner,overrides,expected", [
    ("bayesian", ("tune.max_trials=3",), 3),  # two random, then one from the Gaussian process
    ("hyperband", ("tune.hyperband_max_epochs=2", "tune.max_trials=1"), 2),  # ignores max_trials
])
def test_each_tuner_runs_its_trials_into_mlflow(store, tmp_path, tuner, overrides,
                                                expected):
    result = search(tmp_path, f"tune.tuner={tuner}", *overrides)
    client = MlflowClient(store)
    trials = children(client, result)
    assert len(result.summary.trials) == len(trials) == expected
    assert len({r.data.tags["trial_id"] for r in trials}) == expected
    assert {r.info.status for r in trials} <= {"FINISHED", "FAILED"}
    assert client.get_run(result.parent_run_id).data.tags["tuner"] == tuner
    for run in trials:
        if run.info.status == "FINISHED":
            epochs = int(run.data.params.get("tuner/epochs", 1))
            assert run.data.params["train.epochs"] == str(epochs)
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
            assert steps == list(range(epochs))


@pytest.mark.slow
def test_hyperband_continues_a_trial_from_its_epoch(store, tmp_path):
    # max_epochs 3: three 1-epoch trials, the best continued to epoch 3, two 3-epoch trials
    result = search(tmp_path, "tune.tuner=hyperband", "tune.hyperband_max_epochs=3")
    client = MlflowClient(store)
    trials = {r.data.tags["trial_id"]: r for r in children(client, result)}
    assert len(trials) == 6
    continued = [r for r in trials.values() if "continues_trial" in r.data.tags]
    assert len(continued) == 1
    (run,) = continued
    params = run.data.params
    assert params["tuner/trial_id"] == run.data.tags["continues_trial"] in trials
    assert (params["tuner/initial_epoch"], params["tuner/epochs"]) == ("1", "3")
    assert params["train.epochs"] == "3"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    assert run.data.metrics["epochs_run"] == 2


@pytest.mark.slow  # a resnet18 graph: about 20 s on two cores
def test_a_small_resnet_searches_on_digits(store, tmp_path):
    result = search(tmp_path, "tune.space=resnet18", "tune.tuner=grid", "tune.max_trials=1",
                    "data.image_size=32x32")
    client = MlflowClient(store)
    (trial,) = children(client, result)
    assert trial.info.status == "FINISHED"
    params = trial.data.params
    assert params["model.architecture"] == trial.data.tags["architecture"] == "resnet18"
    assert params["model.options.filters"] == "16,32,64,128"
    assert (params["filters_1"], params["strides_2"], params["kernel_size_4"]) == ("16", "2", "3")
    built = cnnkeras.build("resnet18", input_shape=(32, 32, 1), num_classes=10,
                           filters=(16, 32, 64, 128))
    assert int(params["parameters"]) == built.count_params()
    assert client.get_run(result.parent_run_id).data.tags["architecture"] == "resnet18"


def test_a_resnet_too_deep_for_its_input_is_rejected_by_geometry(store, tmp_path):
    result = search(tmp_path, "tune.space=resnet18", "tune.tuner=grid", "tune.max_trials=1",
                    "data.image_size=16x16")
    (trial,) = children(MlflowClient(store), result)
    assert trial.info.status == "FAILED"
    assert trial.data.tags["failure_reason"].startswith(
        "rejected by geometry: resnet18 downsamples by 32")
    assert "conv5_block1 (stride 2) would get 1x1" in trial.data.tags["failure_reason"]
