"""`cnnkeras compare` and the URLs `make ui` prints, over a store filled by a real search."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cnnkeras.cli import main
from cnnkeras.inspection import viz
from cnnkeras.tracking import compare, dashboard


@pytest.fixture
def store(searched_store, monkeypatch, tmp_path):
    uri, _ = searched_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


def test_compare_ranks_trials_and_training_runs_and_logs_a_comparison_run(
        store, capsys, artifact_paths):
    assert main(["compare", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [row["run_name"] for row in rows]
    assert "lecture_cnn digits" in names and sum("trial" in n for n in names) >= 2
    scores = [row["best_val_accuracy"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    client = MlflowClient(store)
    by_name = {r.info.run_name: r for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()])}
    for row in rows:
        run = by_name[row["run_name"]]
        assert row["parameters"] == int(run.data.params["parameters"])
        assert row["flops_per_image"] == int(run.data.params["flops_per_image"])
        assert row["final_val_accuracy"] == pytest.approx(run.data.metrics["val_accuracy"])
        assert row["images_per_second"] > 0
        assert row["run_id"] == run.info.run_id
    comparisons = client.get_experiment_by_name(compare.COMPARISONS)
    (logged,) = client.search_runs([comparisons.experiment_id])
    assert logged.info.status == "FINISHED"
    assert set(artifact_paths(client, logged.info.run_id)) == {
        "best_runs.csv", "best_runs.md", "plots/val_accuracy_vs_parameters.png",
        "plots/val_accuracy_vs_flops_per_image.png", "plots/val_accuracy_curves.png",
        "plots/latest_search_parallel_coordinates.png"}


@pytest.mark.parametrize("fmt", ["markdown", "csv"])
def test_table_formats_for_scripts(store, capsys, fmt):
    assert main(["compare", "lecture_digits", "--format", fmt, "--top", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    if fmt == "csv":
        assert out[0].startswith("run_name,experiment,architecture,dataset,parameters")
        assert len(out) == 3
    else:
        assert out[0].startswith("| run_name | experiment |") and out[1].startswith("|---|")
        assert len(out) == 4


@pytest.mark.parametrize("argv, message", [
    (["compare", "nope"], "No experiment named 'nope' in sqlite:"),
    (["compare", "--metric", "val_iou"], "No finished run has metric 'val_iou'. Metrics the runs"
                                         " have: accuracy"),
])
def test_bad_input_is_one_line_naming_what_exists(store, capsys, argv, message):
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and message in err[0]
    if "nope" in argv:
        assert "Experiments: cnnkeras-train, lecture_digits." in err[0]


def test_an_empty_store_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["compare"]) == 2
    assert "No cnnkeras experiments in sqlite:" in capsys.readouterr().err


def test_pareto_front_keeps_only_undominated_runs():
    costs = np.array([10, 20, 30, 40, 15])
    scores = np.array([0.5, 0.7, 0.6, 0.9, 0.4])
    assert sorted(viz.pareto_front(costs, scores)) == [0, 1, 3]
    assert sorted(viz.pareto_front(costs, scores, maximize=False)) == [0, 4]


def trials_table(client, search_run_id, folder) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(search_run_id, "trials.csv", str(folder)))


def searched_space(table: pd.DataFrame) -> list[str]:
    """The hyperparameter columns of a search's trials.csv, in the space's order."""
    return [c for c in table.columns
            if c not in {"trial_id", "status", "score", "reason", "run_id"}]


def test_ui_urls_open_the_training_view_and_the_latest_search_as_a_saved_view(store, tmp_path):
    lines = dashboard.where_to_look("http://127.0.0.1:5000")
    runs_line = next(line for line in lines if line.strip().startswith("lecture_digits:"))
    assert runs_line.endswith("?workflowType=machine_learning")
    search = dashboard.latest_search()
    assert search.name.startswith("lecture_cnn digits search (random, ")
    assert len(search.trials) == 3 and search.score == "best_val_accuracy"
    table_line = next(line for line in lines if "best first" in line)
    chart_line = next(line for line in lines if "compare the trials" in line)
    view = (f"http://127.0.0.1:5000/#/experiments/{search.experiment_id}/runs?"
            "viewStateShareKey=cnnkeras-latest-search")
    assert table_line.endswith(f": {view}&workflowType=machine_learning")
    assert chart_line.endswith(f": {view}&compareRunsMode=CHART&workflowType=machine_learning")
    # The view is MLflow 3.17's saved-view tag on the experiment, as its "Save & share
    # view" writes it: the search's trials, best first, the chart on the search space.
    client = MlflowClient(store)
    tag = client.get_experiment(search.experiment_id).tags[
        "mlflow.sharedViewState.cnnkeras-latest-search"]
    envelope = json.loads(tag)
    assert envelope["name"] == f"{search.name}: trials by best_val_accuracy"
    assert isinstance(envelope["createdAt"], int) and envelope["updatedAt"] >= envelope["createdAt"]
    state = json.loads(envelope["state"])
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{search.run.info.run_id}'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`best_val_accuracy`", False)
    space = searched_space(trials_table(client, search.run.info.run_id, tmp_path))
    assert space[:8] == ["filters_1", "filters_2", "kernel_size_1", "kernel_size_2",
                         "strides_1", "strides_2", "padding_1", "padding_2"]
    (chart,) = state["compareRunCharts"]
    assert chart["type"] == "PARALLEL"
    assert (chart["selectedParams"], chart["selectedMetrics"]) == (space, ["best_val_accuracy"])
    assert state["selectedColumns"][:2] == ["metrics.`best_val_accuracy`", "params.`filters_1`"]
    assert dashboard.run_url("http://h:1", "3", "abc") == \
        "http://h:1/#/experiments/3/runs/abc?workflowType=machine_learning"


def test_a_trials_params_are_its_hyperparameters_and_the_facts_comparing_needs(store, tmp_path):
    """The resolved config is the trial's config.json (and the search's, on the parent)."""
    client = MlflowClient(store)
    search = dashboard.latest_search()
    space = searched_space(trials_table(client, search.run.info.run_id, tmp_path))
    for trial in search.trials:
        assert set(trial.data.params) == {*space, "parameters", "flops_per_image", "replicas"}
        config = json.loads(open(client.download_artifacts(
            trial.info.run_id, "config.json", str(tmp_path / trial.info.run_id))).read())
        assert config["model"]["options"]["filters"] == [int(trial.data.params["filters_1"]),
                                                         int(trial.data.params["filters_2"])]
        assert config["train"]["optimizer"] == trial.data.params["optimizer"]
    assert "config.json" in {a.path for a in client.list_artifacts(search.run.info.run_id)}


def test_latest_search_trials_carry_exactly_the_search_space_and_their_score(store, tmp_path):
    """The parallel-coordinates columns are the hyperparameters KerasTuner recorded, in its
    order; the score is each trial's best val_accuracy over its epochs, not its last."""
    comparison = compare.load(["lecture_digits"])
    client = MlflowClient(store)
    search = dashboard.latest_search()
    recorded = trials_table(client, search.run.info.run_id, tmp_path)
    assert list(comparison.search_trials.columns) == [*searched_space(recorded), "score"]
    assert len(comparison.search_trials) == 3
    best = [max(m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy"))
            for run in search.trials]  # the trials in the order compare reads them
    assert list(comparison.search_trials["score"]) == pytest.approx(best)
    # KerasTuner's own score for each trial is the same number
    assert sorted(comparison.search_trials["score"]) == pytest.approx(sorted(recorded["score"]))


def test_ui_prints_the_runs_tables_when_the_view_cannot_be_saved(store, monkeypatch):
    def refuse(search):
        raise OSError("attempt to write a readonly database")

    monkeypatch.setattr(dashboard, "save_search_view", refuse)
    lines = dashboard.where_to_look("http://127.0.0.1:5000")
    assert any(line.strip().startswith("lecture_digits: http://") for line in lines)
    assert lines[-1].startswith("  (the view of 'lecture_cnn digits search (random, ")
    assert lines[-1].endswith("could not be saved: attempt to write a readonly database)")


def test_a_trials_score_is_its_best_epoch_not_its_last(tracking_store):
    client = MlflowClient(tracking_store)
    run_id = client.create_run(client.create_experiment("scores")).info.run_id
    for step, (accuracy, loss) in enumerate([(0.5, 1.0), (0.9, 0.4), (0.7, 0.6)]):
        client.log_metric(run_id, "val_accuracy", accuracy, step=step)
        client.log_metric(run_id, "val_loss", loss, step=step)
    run = client.get_run(run_id)
    assert compare.trial_score(run, "val_accuracy") == 0.9
    assert compare.trial_score(run, "val_loss") == 0.4
    client.log_metric(run_id, "best_val_accuracy", 0.85)  # two executions' bests, averaged
    assert compare.trial_score(client.get_run(run_id), "val_accuracy") == 0.85
    assert compare.trial_score(run, "val_iou") is None


def test_ui_server_runs_without_the_genai_job_runner_unless_asked(monkeypatch):
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    assert dashboard.server_environment()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    assert dashboard.server_environment()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
    command = dashboard.server_command("sqlite:///x.db", host="127.0.0.1", port=5001, workers=2)
    assert command[-6:] == ["--host", "127.0.0.1", "--port", "5001", "--workers", "2"]


def test_ui_rejects_zero_workers_in_one_line(store, capsys):
    assert main(["ui", "--workers", "0"]) == 2
    assert "--workers must be at least 1. Received: 0" in capsys.readouterr().err


def test_markdown_escapes_pipes():
    assert compare.markdown(pd.DataFrame({"a": ["x|y"], "b": [0.123456]})).splitlines()[2] \
        == "| x\\|y | 0.1235 |"
