"""Chief/worker tuning on loopback (workers under a mirrored strategy), the launcher's
failure handling, and a search surviving a worker killed mid-trial."""

import functools
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras_tuner as kt
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cnnkeras.launch import Supervisor, free_ports
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


@pytest.mark.slow  # 30 s; the chief/worker search runs in the fast suite in the SIGKILL test
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
    assert sum(line.startswith("[worker ") and " done;" in line for line in lines) == 2


@pytest.mark.slow
def test_a_failing_process_stops_the_launch_with_its_status(store, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "2"}
    launched = subprocess.run(
        [sys.executable, "-m", "tuning.distributed", "--workers", "1", "no_such_experiment"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 2
    assert "Unknown experiment 'no_such_experiment'" in launched.stdout
    assert "exited with status 2; stopping the others." in launched.stdout


def finish(oracle, trial, loss):
    oracle.update_trial(trial.trial_id, {"val_loss": loss})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def declare_units(hp):
    hp.Int("units", 1, 64)


def test_a_lost_workers_trial_is_handed_out_again_and_the_others_wait_for_it(tmp_path):
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=2, seed=1)
    kt.Tuner(oracle=oracle, hypermodel=declare_units, directory=str(tmp_path),
             project_name="search")  # gives the oracle its folder and its space
    oracle.verbose = 0
    dispatcher = distributed.Dispatcher(oracle)
    first, second = dispatcher.create_trial("tuner0"), dispatcher.create_trial("tuner1")
    finish(oracle, first, 1.0)
    # The budget is handed out, but tuner1's trial may come back: tuner0 waits, not leaves.
    assert dispatcher.create_trial("tuner0").status == "IDLE"
    assert dispatcher.lose("tuner1") == {"trial": second.trial_id, "finished": False}
    assert dispatcher.lose("tuner1") == {"trial": None, "finished": False}
    assert oracle.get_trial(second.trial_id).status == "INVALID"  # in KerasTuner's retry line
    saved = json.loads((tmp_path / "search" / "oracle.json").read_text())  # as a resume reads it
    assert "tuner1" not in saved["ongoing_trials"] and saved["retry_queue"] == [second.trial_id]
    again = dispatcher.create_trial("tuner0")
    assert (again.trial_id, again.status) == (second.trial_id, "RUNNING")
    assert again.hyperparameters.values == second.hyperparameters.values
    assert not dispatcher.done()
    finish(oracle, again, 0.5)
    assert dispatcher.create_trial("tuner0").status == "STOPPED"
    assert dispatcher.done()
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert oracle.ongoing_trials == {} and oracle.tuner_ids == set()


def test_a_trial_lost_twice_comes_back_twice_but_one_that_crashes_fails(tmp_path):
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=3, seed=1)
    kt.Tuner(oracle=oracle, hypermodel=declare_units, directory=str(tmp_path),
             project_name="search")
    oracle.verbose = 0
    dispatcher = distributed.Dispatcher(oracle)
    lost = dispatcher.create_trial("tuner0").trial_id
    dispatcher.lose("tuner0")
    assert dispatcher.create_trial("tuner1").trial_id == lost
    dispatcher.lose("tuner1")
    crashed = dispatcher.create_trial("tuner2")
    assert crashed.trial_id == lost
    crashed.status = "INVALID"  # as KerasTuner's worker ends a trial that raised
    oracle.end_trial(crashed)
    assert oracle.get_trial(lost).status == "FAILED"  # max_retries_per_trial=0 still holds
    assert oracle.max_retries_per_trial == 0
    assert dispatcher.create_trial("tuner2").trial_id != lost


def test_the_chief_refuses_a_port_in_use():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        with pytest.raises(ValueError, match=f"127.0.0.1:{port}: is the port in use"):
            distributed.check_free("127.0.0.1", port)


def exiting(status, after=0.0):
    return [sys.executable, "-c", f"import sys, time; time.sleep({after}); sys.exit({status})"]


def run_policy(processes, monkeypatch):
    """The tuning launcher's policy over stand-in processes; no chief answers on the port.

    Returns the status, the launcher's lines, and who ran when the policy stopped them all.
    """
    monkeypatch.setattr(distributed, "CHIEF_WAIT_SECONDS", 1)
    out = io.StringIO()
    with Supervisor(out) as supervisor:
        for name, command in processes.items():
            supervisor.start(name, command, dict(os.environ))
        status = supervisor.watch(functools.partial(
            distributed.on_exit, supervisor, f"127.0.0.1:{free_ports(1)[0]}",
            {"worker 0": "tuner0", "worker 1": "tuner1"}))
        running = supervisor.running()
    assert supervisor.running() == []
    return status, out.getvalue().splitlines(), running


def test_the_chief_failing_stops_the_workers(monkeypatch):
    status, lines, running = run_policy({"chief": exiting(2), "worker 0": exiting(0, 60)},
                                        monkeypatch)
    assert (status, running) == (2, ["worker 0"])
    assert lines == ["[launch] chief exited with status 2; stopping the others."]


def test_lost_workers_are_survived_until_none_is_left(monkeypatch):
    status, lines, running = run_policy(
        {"chief": exiting(0, 60), "worker 0": exiting(4, 3), "worker 1": exiting(3)},
        monkeypatch)
    assert (status, running) == (4, ["chief"])
    assert lines == ["[launch] worker 1 exited with status 3; the chief could not be told",
                     "[launch] worker 0 exited with status 4; the chief could not be told",
                     "[launch] no worker is left to finish the search; stopping the chief."]


def running_trial(uri, tuner_id, timeout):
    """(trial id, pid) of the first trial run ``tuner_id`` is seen running."""
    client, deadline = MlflowClient(uri), time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("lecture_digits")
        runs = experiment and client.search_runs(
            [experiment.experiment_id],
            f"tags.tuner_id = '{tuner_id}' and attributes.status = 'RUNNING'")
        if runs:
            return runs[0].data.tags["trial_id"], int(runs[0].data.tags["cnnkeras.pid"])
        time.sleep(0.2)
    raise AssertionError(f"{tuner_id} ran no trial within {timeout} s")


@pytest.mark.slow  # ~70 s on two cores; the lost training worker is in the fast suite
def test_a_worker_killed_mid_trial_is_survived_and_its_trial_run_again(store, tmp_path):
    budget = 4
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(tmp_path / "launch.log", "w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "tuning.distributed", "--workers", "2", "lecture_digits",
             "--max-trials", str(budget), "--epochs", "2", "--set", "data.limit=120",
             "--set", "runtime.verbose=0", "--set", f"tune.directory={tmp_path / 'tuner'}"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            killed, pid = running_trial(store, "tuner1", timeout=300)
            os.kill(pid, signal.SIGKILL)
            assert launcher.wait(timeout=400) == 0, (tmp_path / "launch.log").read_text()[-3000:]
        finally:
            launcher.kill()
    lines = (tmp_path / "launch.log").read_text().splitlines()
    assert (f"[launch] worker 1 died (signal 9) during trial {killed}; "
            f"trial {killed} is handed out again") in lines
    client, runs, parents = search_runs(store)
    (parent,) = parents
    trials = {r.data.tags["trial_id"]: r for r in runs if r is not parent}
    assert len(runs) == budget + 1  # the killed trial re-run into its own run, not a new one
    assert sorted(trials) == [f"{i}" for i in range(budget)]
    assert {r.info.status for r in runs} == {"FINISHED"}  # none left RUNNING
    assert {r.data.tags["trial_status"] for r in trials.values()} == {"COMPLETED"}
    rerun = trials[killed].data.tags
    assert rerun["cnnkeras.ended_by"] == "cleanup after process died"  # ended KILLED first
    assert rerun["tuner_id"] == "tuner0"  # then run again by the worker left
    assert parent.data.metrics["trials_completed"] == parent.data.metrics["trials_total"] == budget
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "trials.csv", tmp_path))
    assert set(table["status"]) == {"COMPLETED"} and len(table) == budget
    saved = [json.loads(p.read_text()) for p in (tmp_path / "tuner").glob("*/trial_*/trial.json")]
    assert sorted(t["status"] for t in saved) == ["COMPLETED"] * budget
    assert not any("Traceback" in line for line in lines)
