"""`cnnkeras compare` and the URLs `make ui` prints, over a store filled by a real search."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cnnkeras import compare, dashboard, viz
from cnnkeras.cli import main


@pytest.fixture
def store(searched_store, monkeypatch, tmp_path):
    uri, _ = searched_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


def artifact_paths(client, run_id, path=None):
    found = []
    for item in client.list_artifacts(run_id, path):
        found.extend(artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return found


def test_compare_ranks_trials_and_training_runs_and_logs_a_comparison_run(store, capsys):
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


def test_ui_urls_open_the_training_view_and_the_latest_search_compare_page(store):
    lines = dashboard.where_to_look("http://127.0.0.1:5000")
    runs_line = next(line for line in lines if line.strip().startswith("lecture_digits:"))
    assert runs_line.endswith("?workflowType=machine_learning")
    compare_line = next(line for line in lines if "compare the trials" in line)
    name, experiment_id, run_ids = dashboard.latest_search_trials()
    assert name.startswith("lecture_cnn digits search (random, ") and len(run_ids) >= 2
    url = compare_line.split(": ", 1)[1]
    assert url.startswith("http://127.0.0.1:5000/#/compare-runs?runs=[")
    assert json.loads(url.split("runs=")[1].split("&")[0]) == run_ids
    assert url.endswith(f'&experiments=["{experiment_id}"]&workflowType=machine_learning')
    assert dashboard.run_url("http://h:1", "3", "abc") == \
        "http://h:1/#/experiments/3/runs/abc?workflowType=machine_learning"


def test_latest_search_trials_carry_exactly_the_search_space(store, tmp_path):
    """The parallel-coordinates columns are the hyperparameters KerasTuner recorded."""
    comparison = compare.load(["lecture_digits"])
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("lecture_digits")
    (search,) = client.search_runs([experiment.experiment_id], "tags.`cnnkeras.kind` = 'search'")
    trials_csv = client.download_artifacts(search.info.run_id, "trials.csv", str(tmp_path))
    recorded = set(pd.read_csv(trials_csv).columns) - {"trial_id", "status", "score", "reason",
                                                        "run_id"}
    assert "filters_1" in recorded and "learning_rate" in recorded
    assert set(comparison.search_trials.columns) == recorded | {"score"}
    assert len(comparison.search_trials) == 3


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
