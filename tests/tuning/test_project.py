"""One search per identity (folder, parent run, lock), a resume that grows the budget, and
damaged tuner state explained in one line or repaired."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import experiments
from cnnkeras.config import apply_overrides
from tuning import project, report
from tuning.search import run_search

TINY = ("train.epochs=1", "data.limit=100", "runtime.verbose=0")
BASE = experiments.get("lecture_digits")


def configured(tmp_path, *overrides):
    return apply_overrides(BASE, [*TINY, f"tune.directory={tmp_path / 'tuner'}", *overrides])


def search(tmp_path, *overrides):
    return run_search(configured(tmp_path, *overrides))


def runs(client, parent_id=None):
    experiment = client.get_experiment_by_name("lecture_digits")
    query = f"tags.`mlflow.parentRunId` = '{parent_id}'" if parent_id else ""
    return client.search_runs([experiment.experiment_id], query) if experiment else []


def searches(client):
    return [r for r in runs(client) if r.data.tags.get("cnnkeras.kind") == "search"]


def test_tuner_space_and_dataset_each_name_their_own_folder(tmp_path):
    folders = {project.project_dir(configured(tmp_path, *o)) for o in (
        (), ("tune.tuner=bayesian",), ("tune.space=training",), ("data.dataset=folder:/a/b",),
        ("data.dataset=folder:/a_b",), ("tune.max_trials=30", "train.epochs=2"))}
    assert len(folders) == 5  # budget and epochs are not part of a search's identity
    assert project.project_dir(configured(tmp_path)) == (
        tmp_path / "tuner" / "lecture_digits-random-lecture_cnn-digits")


def hold_in_another_process(folder):
    """A process holding ``folder``'s lock; returns it once the lock is taken."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom tuning import project\n"
            "with project.hold(Path(sys.argv[1])):\n    print('held', flush=True)\n"
            "    time.sleep(120)\n")
    checkout = str(Path(project.__file__).parents[1])
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": checkout})
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_is_refused_naming_the_pid_and_a_dead_ones_lock_is_taken_over(tmp_path):
    folder = tmp_path / "search"
    holder = hold_in_another_process(folder)
    try:
        with pytest.raises(ValueError, match=rf"already running in process PID {holder.pid} "):
            with project.hold(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (folder / project.LOCK).read_text() == str(holder.pid)  # a dead process's lock
    with project.hold(folder):
        assert (folder / project.LOCK).read_text() == str(os.getpid())
    assert (folder / project.LOCK).read_text() == ""


def test_a_running_search_is_not_touched_by_a_second_run_search(store, tmp_path):
    folder = project.project_dir(configured(tmp_path))
    holder = hold_in_another_process(folder)
    try:
        with pytest.raises(ValueError, match=f"PID {holder.pid}"):
            search(tmp_path, "tune.max_trials=1")
    finally:
        holder.kill()
        holder.wait()
    assert runs(MlflowClient(store)) == []  # no parent run was opened, let alone changed


def test_each_tuner_is_its_own_search_and_a_resume_grows_the_recorded_budget(store, tmp_path):
    client = MlflowClient(store)
    first = search(tmp_path, "tune.max_trials=2")
    before = client.get_run(first.parent_run_id)
    second = search(tmp_path, "tune.max_trials=2", "tune.tuner=bayesian")
    assert second.parent_run_id != first.parent_run_id
    after = client.get_run(first.parent_run_id)  # the random search is left as it was
    assert (after.info.status, after.info.end_time) == ("FINISHED", before.info.end_time)
    assert after.data.metrics == before.data.metrics
    parents = {r.info.run_id: r for r in searches(client)}
    assert parents[second.parent_run_id].data.tags["tuner"] == "bayesian"
    assert parents[second.parent_run_id].info.status == "FINISHED"
    assert len(runs(client, second.parent_run_id)) == 2
    assert sorted(p.name for p in (tmp_path / "tuner").iterdir()) == [
        "lecture_digits-bayesian-lecture_cnn-digits", "lecture_digits-random-lecture_cnn-digits"]

    resumed = search(tmp_path, "tune.max_trials=3")
    assert resumed.parent_run_id == first.parent_run_id
    parent = client.get_run(first.parent_run_id)
    assert parent.data.tags["tune.max_trials"] == "3"
    assert parent.data.metrics["trials_total"] == 3
    config = json.loads(open(client.download_artifacts(parent.info.run_id, "config.json",
                                                       str(tmp_path))).read())
    assert config["tune"]["max_trials"] == 3
    assert sorted(r.data.tags["trial_id"] for r in runs(client, first.parent_run_id)) == [
        "0", "1", "2"]

    # state another oracle wrote (here: copied by hand) is refused in one line, not a KeyError
    foreign = project.project_dir(configured(tmp_path, "tune.tuner=hyperband"))
    shutil.copytree(project.project_dir(configured(tmp_path)), foreign)
    with pytest.raises(ValueError, match=re.escape(
            f"The tuner state in {foreign} does not fit this search (KeyError: "
            f"'hyperband_iterations'): delete the folder {foreign} to start this search afresh."
            )):
        search(tmp_path, "tune.tuner=hyperband")


def damage(path):
    path.write_text(path.read_text()[:40])  # cut off mid-write


def test_damaged_state_is_repaired_from_mlflow_or_explained_in_one_line(store, tmp_path, capsys):
    client = MlflowClient(store)
    result = search(tmp_path, "tune.max_trials=2")
    folder = project.project_dir(configured(tmp_path))
    (trial_1,) = [r for r in runs(client, result.parent_run_id)
                  if r.data.tags["trial_id"] == "1"]
    finished = client.get_run(result.parent_run_id).info.end_time

    # 1. a trial.json cut off: the trial is re-run, into its own run, from its recorded values
    damage(folder / "trial_1" / "trial.json")
    search(tmp_path, "tune.max_trials=2")
    printed = capsys.readouterr().out
    assert f"{folder / 'trial_1' / 'trial.json'} could not be read; trial 1 will be re-run" \
        in printed
    again = client.get_run(trial_1.info.run_id)
    assert again.data.tags["trial_status"] == "COMPLETED"
    assert len(client.get_metric_history(trial_1.info.run_id, "loss")) == 2  # trained twice
    assert json.loads((folder / "trial_1" / "trial.json").read_text())["status"] == "COMPLETED"
    assert {p for p in ("filters_1", "optimizer")
            if again.data.params[p] != trial_1.data.params[p]} == set()
    assert len(runs(client, result.parent_run_id)) == 2
    assert client.get_run(result.parent_run_id).info.end_time > finished

    # 2. ... and without a recorded run to rebuild it from: one line, the parent ends FAILED
    client.delete_run(trial_1.info.run_id)
    damage(folder / "trial_1" / "trial.json")
    with pytest.raises(ValueError) as raised:
        search(tmp_path, "tune.max_trials=2")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / 'trial_1' / 'trial.json'} cannot be read")
    assert message.endswith(f"delete the folder {folder} to start this search afresh.")
    assert client.get_run(result.parent_run_id).info.status == "FAILED"

    # 3. an oracle.json cut off with no good copy
    (folder / report.BACKUP).unlink()
    damage(folder / report.ORACLE)
    with pytest.raises(ValueError, match=re.escape(
            f"{folder / report.ORACLE} cannot be read and has no good copy (oracle.json.good): "
            f"delete the folder {folder}")):
        search(tmp_path, "tune.max_trials=2")
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["cnnkeras.error"].startswith("ValueError: ")


def test_a_trial_folder_the_oracle_never_recorded_is_removed_and_tuner_files_rewritten(tmp_path):
    (tmp_path / report.ORACLE).write_text(json.dumps({"start_order": ["0"]}))
    (tmp_path / "trial_0").mkdir()
    (tmp_path / "trial_0" / "trial.json").write_text('{"trial_id": "0"}')
    (tmp_path / "trial_1").mkdir()
    (tmp_path / "trial_1" / "trial.json").write_text('{"trial_')  # killed while created
    (tmp_path / "tuner0.json").write_text("{")
    project.check_state(tmp_path, recorded=lambda trial_id: pytest.fail("nothing to recover"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [report.ORACLE, "trial_0", "tuner0.json"]
    assert json.loads((tmp_path / "tuner0.json").read_text()) == {}


def test_an_oracle_file_missing_beside_trials_is_explained(tmp_path):
    (tmp_path / "trial_0").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path / report.ORACLE} is missing, but "):
        project.check_state(tmp_path, recorded=lambda trial_id: None)
