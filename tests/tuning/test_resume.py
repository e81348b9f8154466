"""A search killed with SIGKILL mid-trial resumes: same parent, no trial twice, budget reached."""

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

BUDGET = 4


def tune_command(tmp_path):
    return [sys.executable, "-m", "cnnkeras", "tune", "lecture_digits",
            "--max-trials", str(BUDGET), "--epochs", "3",
            "--set", "data.limit=150", "--set", f"tune.directory={tmp_path / 'tuner'}",
            "--set", "runtime.verbose=0"]


def runs_of(client):
    experiment = client.get_experiment_by_name("lecture_digits")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def trial_runs(runs):
    return {run.data.tags["trial_id"]: run for run in runs if "trial_id" in run.data.tags}


def wait_for_third_trial(client, process, deadline):
    """Poll until two trials are COMPLETED and a third is running; its runs then."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the search ended (status {process.returncode}) before it was killed")
        trials = trial_runs(runs_of(client))
        states = [run.data.tags.get("trial_status") for run in trials.values()]
        if states.count("COMPLETED") >= 2 and "RUNNING" in states:
            return trials
        time.sleep(0.2)
    pytest.fail("no third trial started in time")


@pytest.mark.slow  # a search killed and rerun; test_project's resume stays fast
def test_a_search_killed_mid_trial_resumes_without_running_any_trial_twice(store, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "2"}
    client = MlflowClient(store)
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(tune_command(tmp_path), cwd=tmp_path, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            before = wait_for_third_trial(client, process, time.monotonic() + 240)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    killed = next(tid for tid, run in before.items()
                  if run.data.tags["trial_status"] == "RUNNING")
    completed = {tid: run for tid, run in before.items()
                 if run.data.tags["trial_status"] == "COMPLETED"}
    epochs_logged = {tid: len(client.get_metric_history(run.info.run_id, "loss"))
                     for tid, run in completed.items()}
    (parent_before,) = [r for r in runs_of(client) if r.data.tags.get("cnnkeras.kind") == "search"]

    second = subprocess.run(tune_command(tmp_path), cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]

    runs = runs_of(client)
    parents = [r for r in runs if r.data.tags.get("cnnkeras.kind") == "search"]
    assert [p.info.run_id for p in parents] == [parent_before.info.run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    trial_ids = [r.data.tags["trial_id"] for r in children]
    assert len(trial_ids) == len(set(trial_ids)) == BUDGET
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert "RUNNING" not in {r.info.status for r in runs}
    after = trial_runs(runs)
    for trial_id, run in completed.items():  # finished trials were not run again
        assert after[trial_id].info.run_id == run.info.run_id
        assert len(client.get_metric_history(run.info.run_id, "loss")) == epochs_logged[trial_id]
    resumed = after[killed]
    assert resumed.info.run_id == before[killed].info.run_id
    assert resumed.info.status in ("FINISHED", "FAILED")
    assert resumed.data.tags["trial_status"] in ("COMPLETED", "FAILED")
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["trials_total"] == BUDGET
    assert f"{BUDGET} trials:" in second.stdout
