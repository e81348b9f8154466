"""`run_search` in-process on tiny digits: the MLflow run tree, params, metrics, artifacts,
best-trial tags, one number per trial, the user's options in every trial, geometry pruning,
the four tuners and a small ResNet search."""

import contextlib
import csv
import io
import json
import re
import shutil
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

import cnnkeras
import experiments
from cnnkeras.config import apply_overrides
from cnnkeras.inspection.analysis import model_flops
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


# a user's option the space leaves alone (pool_size) and one it varies (dropout)
USER_OPTIONS = ("model.options.pool_size=3", "model.options.dropout=0.5")


@pytest.fixture(scope="module")
def three_trials(tmp_path_factory, template_store):
    """One random search of three trials, shared by the run-tree tests below; its output."""
    folder = tmp_path_factory.mktemp("three")
    shutil.copyfile(template_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        result = search(folder, "tune.max_trials=3", *USER_OPTIONS)
    return MlflowClient(uri), result, folder, printed.getvalue()


def test_three_trials_are_three_nested_runs_under_one_finished_parent(three_trials):
    client, result, *_ = three_trials
    everything = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trials = children(client, result)
    assert len(everything) == 4 and len(trials) == 3
    assert sorted(r.data.tags["trial_id"] for r in trials) == ["0", "1", "2"]
    assert {r.info.status for r in everything} <= {"FINISHED", "FAILED"}
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["cnnkeras.kind"] == "search"
    assert parent.data.tags["tuner"] == "random"
    assert parent.data.tags["tune.max_trials"] == "3"
    assert "tune.max_trials" not in parent.data.params  # a resume may raise it
    assert parent.data.metrics["trials_total"] == 3
    assert {r.info.run_name for r in trials} == {f"lecture_cnn digits trial {i}" for i in "012"}
    assert re.fullmatch(r"lecture_cnn digits search \(random, \d{4}-\d\d-\d\d \d\d:\d\d\)",
                        parent.info.run_name)


def test_a_trial_has_one_number_in_the_console_run_name_summary_and_table(three_trials):
    client, result, folder, printed = three_trials
    table = result.summary.trials
    assert list(table["trial_id"]) == ["0", "1", "2"]
    names = {r.data.tags["trial_id"]: r.info.run_name for r in children(client, result)}
    for _, row in table.iterrows():
        assert names[row["trial_id"]] == f"lecture_cnn digits trial {row['trial_id']}"
        assert f"Trial {row['trial_id']} COMPLETED: val_accuracy {row['score']:.4f}" in printed
        assert (folder / "tuner" / "lecture_digits-random-lecture_cnn-digits"
                / f"trial_{row['trial_id']}" / "trial.json").exists()
    assert "Running Trial #" not in printed  # KerasTuner's own count is not shown
    best = result.summary.best_trial_id
    assert f"Best trial {best}: val_accuracy" in printed


def trial_config(client, run) -> dict:
    """The resolved config a trial trained (its ``config.json``; params are hyperparameters)."""
    with open(client.download_artifacts(run.info.run_id, "config.json")) as handle:
        return json.load(handle)


def test_the_users_options_reach_every_trial_and_a_varied_one_is_reported_once(three_trials):
    client, result, _, printed = three_trials
    for run in children(client, result):
        options = trial_config(client, run)["model"]["options"]
        assert options["pool_size"] == 3
        assert str(options["dropout"]) == run.data.params["dropout"]
    assert printed.count("Warning:") == 1
    assert ("Warning: search space lecture_cnn varies dropout, so the configured "
            "model.options.dropout=0.5 is not used by any trial.") in printed


def test_each_trial_logs_its_hyperparameters_config_parameter_count_and_metrics(three_trials):
    client, result, *_ = three_trials
    rows = result.summary.trials.set_index("trial_id")
    for run in children(client, result):
        params, trial_id = run.data.params, run.data.tags["trial_id"]
        config = trial_config(client, run)
        filters = (int(params["filters_1"]), int(params["filters_2"]))
        assert config["model"]["options"]["filters"] == list(filters)
        assert config["train"]["optimizer"] == params["optimizer"] == \
            rows.loc[trial_id, "optimizer"]
        assert config["model"]["architecture"] == "lecture_cnn"
        if run.data.tags["trial_status"] == "COMPLETED":
            assert run.info.status == "FINISHED"
            shape = (*config["data"]["image_size"], 1)
            built = cnnkeras.build("lecture_cnn", input_shape=shape, num_classes=10,
                                   **{"filters": filters,
                                      "kernel_sizes": (int(params["kernel_size_1"]),
                                                       int(params["kernel_size_2"])),
                                      "strides": (int(params["strides_1"]),
                                                  int(params["strides_2"])),
                                      "paddings": (params["padding_1"], params["padding_2"]),
                                      "dense_units": int(params["dense_units"]),
                                      "dropout": float(params["dropout"]),
                                      "pool_size": 3,
                                      "batch_norm": params["batch_norm"] == "True"})
            assert int(params["parameters"]) == built.count_params()
            assert int(params["flops_per_image"]) == model_flops(built)
            metrics = run.data.metrics
            assert {"loss", "val_accuracy", "final_val_accuracy", "best_val_loss"} <= set(metrics)
            assert metrics["epochs_run"] == 1
            assert metrics["final_val_accuracy"] == pytest.approx(rows.loc[trial_id, "score"])


def test_the_parent_holds_the_trial_table_the_plot_and_the_best_trial(three_trials, artifact_paths):
    client, result, folder, _ = three_trials
    parent = client.get_run(result.parent_run_id)
    assert {"trials.csv", "plots/parallel_coordinates.png", "config.json"} <= set(
        artifact_paths(client, parent.info.run_id))
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


def test_the_defaults_that_do_not_fit_are_pruned_and_the_trial_that_runs_fits(store, tmp_path,
                                                                              capsys):
    # grid's first candidate is every default: at 8x8 the maps go 6, 3, 1, then a 2x2 pool.
    # Every combination up to padding_2 = "same" (3 dense_units x 3 dropouts x 2 batch_norms
    # x 2 learning rates x 2 optimizers = 72 of them) has that geometry.
    result = search(tmp_path, "tune.max_trials=1", "tune.tuner=grid", "data.image_size=8x8")
    client = MlflowClient(store)
    (trial,) = children(client, result)
    assert trial.info.status == "FINISHED"
    assert (trial.data.params["padding_1"], trial.data.params["padding_2"]) == ("valid", "same")
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["candidates_pruned_geometry"] == 72
    assert parent.data.metrics["trials_rejected_geometry"] == 0
    assert parent.data.tags["best_trial_id"] == "0"
    printed = capsys.readouterr().out
    assert "1 completed, 0 failed (0 rejected by geometry); 72 candidates pruned" in printed


# random runs in `three_trials`, grid in the execution and ResNet tests
@pytest.mark.parametrize("tuner,overrides,expected", [
    pytest.param("bayesian", ("tune.max_trials=3",), 3,  # two random, then one from the GP
                 marks=pytest.mark.slow),  # test_oracles runs bayesian in the fast suite
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
            assert trial_config(client, run)["train"]["epochs"] == epochs
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
            assert steps == list(range(epochs))


def test_hyperband_continues_a_trial_from_its_epoch(store, tmp_path):
    # max_epochs 3: three 1-epoch trials, the best continued to epoch 3, two 3-epoch trials
    result = search(tmp_path, "tune.tuner=hyperband", "tune.hyperband_max_epochs=3",
                    "train.lr_schedule=cosine")
    client = MlflowClient(store)
    trials = {r.data.tags["trial_id"]: r for r in children(client, result)}
    assert len(trials) == 6
    continued = [r for r in trials.values() if "continues_trial" in r.data.tags]
    assert len(continued) == 1
    (run,) = continued
    params = run.data.params
    assert params["tuner/trial_id"] == run.data.tags["continues_trial"] in trials
    assert (params["tuner/initial_epoch"], params["tuner/epochs"]) == ("1", "3")
    assert trial_config(client, run)["train"]["epochs"] == 3
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    assert run.data.metrics["epochs_run"] == 2
    # the continuation goes on down the cosine of a 3-epoch run, where its first epoch left
    # off: epochs 1 and 2 at (1 + cos(pi e / 3)) / 2 of the trial's rate; a 1-epoch trial
    # trains its one epoch at the full rate
    rates = {trial_id: sorted(client.get_metric_history(r.info.run_id, "learning_rate"),
                              key=lambda m: m.step) for trial_id, r in trials.items()}
    rate = float(params["learning_rate"])
    assert [(m.step, m.value) for m in rates[run.data.tags["trial_id"]]] == [
        (1, pytest.approx(0.75 * rate)), (2, pytest.approx(0.25 * rate))]
    first = trials[params["tuner/trial_id"]]
    assert [(m.step, m.value) for m in rates[params["tuner/trial_id"]]] == [
        (0, pytest.approx(float(first.data.params["learning_rate"])))]


@pytest.mark.slow  # a resnet18 graph: about 20 s on two cores
def test_a_small_resnet_searches_on_digits(store, tmp_path):
    result = search(tmp_path, "tune.space=resnet18", "tune.tuner=grid", "tune.max_trials=1",
                    "data.image_size=32x32")
    client = MlflowClient(store)
    (trial,) = children(client, result)
    assert trial.info.status == "FINISHED"
    params = trial.data.params
    config = trial_config(client, trial)
    assert config["model"]["architecture"] == trial.data.tags["architecture"] == "resnet18"
    assert config["model"]["options"]["filters"] == [16, 32, 64, 128]
    assert (params["filters_1"], params["strides_2"], params["kernel_size_4"]) == ("16", "2", "3")
    built = cnnkeras.build("resnet18", input_shape=(32, 32, 1), num_classes=10,
                           filters=(16, 32, 64, 128))
    assert int(params["parameters"]) == built.count_params()
    assert client.get_run(result.parent_run_id).data.tags["architecture"] == "resnet18"


def test_the_search_delivers_its_best_trial_tested_logged_and_registered(three_trials):
    client, result, folder, printed = three_trials
    winner = result.winner
    assert winner.trial_id == result.summary.best_trial_id
    assert winner.registered == "models:/lecture_digits/1"
    assert f"Registered: {winner.registered}" in printed
    parent = client.get_run(result.parent_run_id)
    assert parent.data.metrics["test_accuracy"] == pytest.approx(
        winner.test_metrics["test_accuracy"])
    assert parent.data.tags["cnnkeras.registered_model"] == winner.registered
    best_run = client.get_run(result.summary.best_run_id)
    assert best_run.data.metrics["test_accuracy"] == parent.data.metrics["test_accuracy"]
    version = client.get_model_version("lecture_digits", "1")
    assert version.tags["trial_id"] == winner.trial_id
    assert version.tags["search_run_id"] == result.parent_run_id
    assert float(version.tags["test_accuracy"]) == pytest.approx(
        winner.test_metrics["test_accuracy"], abs=1e-4)
    # Rebuilt from the best trial's checkpoint: the same weights, not a retrained model.
    import numpy as np

    mlflow.set_tracking_uri(client.tracking_uri)  # this search's store, not the last one used
    model = mlflow.keras.load_model(winner.registered)
    # this search's own project folder (other tests search beside it in the same folder)
    project = Path(parent.data.tags["cnnkeras.search_dir"])
    trial_dir = project / f"trial_{winner.trial_id}"
    config_path = client.download_artifacts(result.summary.best_run_id, "config.json",
                                            str(folder / "winner"))
    options = json.loads(open(config_path).read())["model"]["options"]
    best = cnnkeras.build("lecture_cnn", input_shape=model.input_shape[1:], num_classes=10,
                          **options)
    best.load_weights(trial_dir / "checkpoint.weights.h5")
    for ours, theirs in zip(model.get_weights(), best.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_trials_stop_early_on_the_objective_with_the_configured_patience(tracking_store,
                                                                         tmp_path):
    result = search(tmp_path, "tune.max_trials=3", "train.epochs=8",
                    "train.early_stopping_patience=1")
    client = MlflowClient(tracking_store)
    stopped = 0
    for trial in children(client, result):
        scores = [m.value for m in sorted(client.get_metric_history(trial.info.run_id,
                                                                    "val_accuracy"),
                                          key=lambda m: m.step)]
        # patience 1: the first epoch that does not beat the best so far is the last
        first_miss = next((i for i in range(1, len(scores)) if scores[i] <= max(scores[:i])),
                          None)
        assert len(scores) == (8 if first_miss is None else first_miss + 1), scores
        stopped += first_miss is not None and first_miss < 7
    assert stopped >= 1  # on 100 images some trial stalls within 8 epochs


def test_a_cosine_schedule_anneals_each_trials_own_learning_rate(tracking_store, tmp_path):
    """Each trial's rate (a hyperparameter of the space) goes down its own cosine."""
    result = search(tmp_path, "tune.max_trials=2", "train.epochs=2", "train.lr_schedule=cosine")
    client = MlflowClient(tracking_store)
    trials = children(client, result)
    assert len(trials) == 2
    for trial in trials:
        rate = float(trial.data.params["learning_rate"])
        logged = sorted(client.get_metric_history(trial.info.run_id, "learning_rate"),
                        key=lambda m: m.step)
        assert [m.value for m in logged] == pytest.approx([rate, rate / 2])
        assert trial.data.metrics["final_learning_rate"] == pytest.approx(rate / 2)
        assert "best_learning_rate" not in trial.data.metrics  # a rate is not a score


def test_a_search_builds_each_model_once_and_collects_only_what_each_trial_made(
        tmp_path, store, monkeypatch):
    import gc

    from cnnkeras import training
    from tuning import search as search_module

    unfrozen = []  # what the two collections KerasTuner runs just before a build walk
    built = []
    build, build_model = search_module.CnnHyperModel.build, training.build_model

    def counting_build(self, hp):
        if self.trial is not None:
            unfrozen.append(len(gc.get_objects()))
        return build(self, hp)

    def counting_build_model(*args, **kwargs):
        built.append(args[0].model.options)
        return build_model(*args, **kwargs)

    monkeypatch.setattr(search_module.CnnHyperModel, "build", counting_build)
    monkeypatch.setattr(training, "build_model", counting_build_model)
    result = search(tmp_path, "tune.max_trials=6")
    assert len(unfrozen) == 6
    # the winner is the best trial's own model, not built again from its checkpoint
    assert len(built) == 6 and result.winner.trial_id == result.summary.best_trial_id
    # each trial leaves thousands of objects no collection frees (42,653 before the second
    # trial here, 91,491 before the sixth, without settling); frozen, the collections walk
    # only the few hundred made since
    assert max(unfrozen[1:]) < 2_000, unfrozen


def test_the_best_epoch_checkpoint_is_written_once_with_the_best_epochs_weights(tmp_path):
    import keras
    import keras_tuner as kt
    import numpy as np
    from keras_tuner.src.engine.tuner_utils import SaveBestEpoch  # what a trial's fit gets

    from tuning import checkpoints

    path = tmp_path / "checkpoint.weights.h5"
    kerastuners = SaveBestEpoch(kt.Objective("val_accuracy", "max"), str(path))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def fit(epochs):  # (weight value, val_accuracy) per epoch
        [callback] = checkpoints.in_memory([kerastuners])
        assert isinstance(callback, checkpoints.BestEpochInMemory)
        callback.set_model(model)
        for epoch, (value, score) in enumerate(epochs):
            model.set_weights([np.full((2, 1), value), np.full((1,), value)])
            callback.on_epoch_end(epoch, {"val_accuracy": score})
        callback.on_train_end()

    def saved_kernel() -> float:
        probe = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        probe.load_weights(path)
        return float(probe.get_weights()[0][0, 0])

    fit([(1.0, 0.5), (2.0, 0.7), (3.0, 0.6)])
    assert saved_kernel() == 2.0  # the best epoch's, not the last one's
    assert float(model.get_weights()[0][0, 0]) == 2.0  # and the model is left at them
    written = path.stat().st_mtime_ns
    fit([(4.0, 0.65)])  # a second execution below the best so far writes nothing
    assert path.stat().st_mtime_ns == written and saved_kernel() == 2.0
    assert float(model.get_weights()[0][0, 0]) == 4.0  # nor changes its model
    fit([(5.0, 0.9)])  # one above it replaces the file
    assert saved_kernel() == 5.0
