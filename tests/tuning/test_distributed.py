"""Chief/worker tuning on loopback (workers under a mirrored strategy), the launcher's
failure handling."""

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from tuning import distributed

TINY = ["--epochs", "2", "--set", "data.limit=100", "--set", "runtime.verbose=0"]


def search_runs(uri):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lecture_digits")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("cnnkeras.kind") == "search"]
    return client, runs, parents


def test_role_follows_the_kerastuner_variables(monkeypatch):
    for name in (distributed.TUNER_ID, distributed.ORACLE_IP, distributed.ORACLE_PORT):
        monkeypatch.delenv(name, raising=False)
    assert distributed.role() is None
    monkeypatch.setenv(distributed.ORACLE_IP, "127.0.0.1")
    with pytest.raises(ValueError, match="KERASTUNER_TUNER_ID and KERASTUNER_ORACLE_PORT"):
        distributed.role()
    monkeypatch.setenv(distributed.ORACLE_PORT, "8000")
    monkeypatch.setenv(distributed.TUNER_ID, "chief")
    assert distributed.role() == "chief"
    monkeypatch.setenv(distributed.TUNER_ID, "tuner1")
    assert distributed.role() == "worker"


def test_the_launcher_refuses_zero_workers(capsys):
    assert distributed.main(["--workers", "0", "lecture_digits"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_a_chief_and_two_mirrored_workers_log_every_trial_once_under_one_parent(store,
                                                                               tmp_path):
    """Each worker also trains under a MirroredStrategy over two logical CPU devices."""
    budget = 4
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "2"}
    launched = subprocess.run(
        [sys.executable, "-m", "tuning.distributed", "--workers", "2", "lecture_digits",
         "--max-trials", str(budget), *TINY, "--set", f"tune.directory={tmp_path / 'tuner'}",
         "--strategy", "mirrored", "--set", "runtime.cpu_devices=2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-2000:]
    client, runs, parents = search_runs(store)
    (parent,) = parents
    trials = [r for r in runs if r is not parent]
    assert sorted(r.data.tags["trial_id"] for r in trials) == [str(i) for i in range(budget)]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parent.info.run_id}
    assert {r.data.tags["tuner_id"] for r in trials} == {"tuner0", "tuner1"}
    assert "RUNNING" not in {r.info.status for r in runs}
    assert {r.data.params["replicas"] for r in trials} == {"2"}
    assert any(r.info.status == "FINISHED" for r in trials)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_total"] == budget  # the chief's summary
    assert "trials.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    lines = launched.stdout.splitlines()
    assert any(line.startswith("[chief] Best trial") for line in lines)
    assert sum(line.startswith("[tuner") and " done;" in line for line in lines) == 2


@pytest.mark.slow
def test_a_failing_process_stops_the_launch_with_its_status(store, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "2"}
    launched = subprocess.run(
        [sys.executable, "-m", "tuning.distributed", "--workers", "1", "no_such_experiment"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 2
    assert "Unknown experiment 'no_such_experiment'" in launched.stdout
    assert "exited with status 2; stopping the others." in launched.stdout
