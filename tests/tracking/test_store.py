"""The SQLite tracking store: one clear line for a store that cannot be used, and a
fresh store that commands starting together create once, without a migration race."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from cnnkeras import tracking

RACER = """
import os, sys, time
from pathlib import Path
from typing import Iterator
from cnnkeras import tracking
start = Path(sys.argv[1])
Path(f"{start}.ready-{os.getpid()}").touch()
while not start.exists():
    time.sleep(0.001)
run = tracking.create_run(tracking.experiment_id("x"), name="racer")
tracking.end_run(run)
print(run.run_id)
"""


def _writable(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[Path]:
    """``folder`` really unwritable for this process: mode 555, and immutable for root."""
    folder.chmod(0o555)
    immutable = (os.geteuid() == 0 and shutil.which("chattr") is not None
                 and subprocess.run(["chattr", "+i", str(folder)],
                                    capture_output=True).returncode == 0)
    try:
        if _writable(folder):
            pytest.skip("no way to deny this user a directory here (root without chattr +i)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.fixture
def unwritable_dir(tmp_path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    folder.mkdir()
    with unwritable(folder):
        yield folder


@pytest.fixture(params=["read-only directory", "file on the path", "text file"])
def broken_store(request, tmp_path):
    """(URI, the problem its error must name) of a store that cannot be used."""
    if request.param == "read-only directory":
        folder = request.getfixturevalue("unwritable_dir")
        return f"sqlite:///{folder / 'mlflow.db'}", f"directory {folder} is not writable"
    if request.param == "file on the path":
        notes = tmp_path / "notes.txt"
        notes.write_text("my notes\n")
        return f"sqlite:///{notes / 'mlflow.db'}", f"{notes} is a file, not a directory"
    (tmp_path / "mlflow.db").write_text("not a database, but my notes\n")
    return f"sqlite:///{tmp_path / 'mlflow.db'}", "is not a SQLite database"


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` with its bytes (None for a directory)."""
    return {path: None if path.is_dir() else path.read_bytes() for path in folder.rglob("*")}


def run_cli(args: list, uri: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # MLflow alone retries a broken store for ~100 s before its traceback: this bound
    # (a guard, not a measurement) fails the test on that path.
    return subprocess.run([sys.executable, "-m", "cnnkeras", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_store_that_cannot_be_used_is_one_value_error(broken_store, tmp_path, monkeypatch):
    uri, problem = broken_store
    before = snapshot(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ValueError) as caught:
        tracking.experiment_id("x")
    assert str(caught.value).startswith(f"MLflow store {uri} ")
    assert problem in str(caught.value)
    assert snapshot(tmp_path) == before  # nothing created, the user's file untouched


@pytest.mark.parametrize("broken_store", [  # a process each; train meets all three in-process
    "text file", pytest.param("read-only directory", marks=pytest.mark.slow),
    pytest.param("file on the path", marks=pytest.mark.slow)], indirect=True)
def test_the_cli_names_an_unusable_store_in_one_line(broken_store, tmp_path):
    uri, problem = broken_store
    before = snapshot(tmp_path)
    done = run_cli(["compare"], uri, tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cnnkeras compare: error: MLflow store ") and problem in last
    assert snapshot(tmp_path) == before


def test_an_existing_store_in_a_read_only_directory_is_read_but_not_written(
        tmp_path, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracking.experiment_id("kept")
    reader = ("from cnnkeras import tracking\n"
              "print(*sorted(e.name for e in tracking.cnnkeras_experiments()))\n"
              "tracking.experiment_id('more')\n")
    with unwritable(folder):
        done = subprocess.run([sys.executable, "-c", reader], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)  # MLflow alone would retry ~100 s
    assert done.stdout.split() == ["kept"]
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"ValueError: MLflow store {uri} is read-only: directory {folder} is not writable. "
        f"{tracking.USE_ANOTHER_STORE}")


def test_an_empty_file_becomes_a_store(tmp_path, monkeypatch):
    store = tmp_path / "mlflow.db"
    store.touch()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    created = tracking.experiment_id("x")
    assert store.read_bytes().startswith(tracking.SQLITE_HEADER)
    assert [e.experiment_id for e in tracking.cnnkeras_experiments()] == [created]


def test_commands_starting_together_create_the_store_once(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    start = tmp_path / "start"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TF_CPP_MIN_LOG_LEVEL": "3"}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(start)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(3)]
    while len(list(tmp_path.glob("start.ready-*"))) < len(racers):  # all imported, waiting
        assert all(racer.poll() is None for racer in racers), "a racer died before the start"
        time.sleep(0.01)
    start.touch()
    outputs = [racer.communicate(timeout=600) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0], [err for _, err in outputs]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    [experiment] = [e for e in tracking.cnnkeras_experiments() if e.name == "x"]
    runs = tracking.find_runs(experiment.experiment_id)
    assert sorted(run.info.run_id for run in runs) == sorted(out.strip() for out, _ in outputs)


def test_train_checks_the_store_before_loading_data(broken_store, tmp_path, monkeypatch, capsys):
    from cnnkeras.cli import main

    uri, problem = broken_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    loaded = []
    monkeypatch.setattr("cnnkeras.training.run.load_data", lambda *a: loaded.append(a))
    assert main(["train", "lecture_cnn", "--dataset", "digits", "--epochs", "1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("cnnkeras train: error: MLflow store ") and problem in line
    assert loaded == []  # refused before any data was read
    assert snapshot(tmp_path) == before


def test_queued_epoch_metrics_are_all_stored_when_the_run_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = tracking.create_run(tracking.experiment_id("queued"), name="epochs")
    callback = run.callback()
    for epoch in range(12):
        callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_accuracy": epoch / 12})
    # queued on cnnkeras' own thread, not MLflow's queue, which ending the run would shut
    # down while its worker idles out a one-second timeout (at the end of every trial)
    assert run.client._tracking_client.store._async_logging_queue.is_idle()
    tracking.end_run(run)

    history = run.client.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, 1.0 / (e + 1)) for e in range(12)]
    assert run.client.get_run(run.run_id).info.status == "FINISHED"


def test_params_are_logged_once_and_metrics_carry_tags_in_one_write(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = tracking.create_run(tracking.experiment_id("writes"), name="trial")
    batches, reads = [], []
    log_batch, get_run = run.client.log_batch, run.client.get_run
    monkeypatch.setattr(run.client, "log_batch",
                        lambda *a, **k: batches.append(k) or log_batch(*a, **k))
    monkeypatch.setattr(run.client, "get_run", lambda *a: reads.append(a) or get_run(*a))
    run.log_params({"filters_1": 16, "optimizer": "adam"})
    run.log_params({"filters_1": 32, "parameters": 1234})  # filters_1 is set already
    run.log_metrics({"best_val_accuracy": 0.9, "epochs_run": 8},
                    tags={"trial_status": "COMPLETED"})
    # the run was created here: its params are known without asking the store
    assert len(batches) == 3 and reads == []
    stored = run.client.get_run(run.run_id).data
    assert stored.params == {"filters_1": "16", "optimizer": "adam", "parameters": "1234"}
    assert stored.metrics == {"best_val_accuracy": 0.9, "epochs_run": 8}
    assert stored.tags["trial_status"] == "COMPLETED"
    # a run this process did not create is asked what it has before params are logged
    again = tracking.reopen_run(run.run_id, {"trial_status": "RUNNING"})
    again.log_params({"optimizer": "sgd", "replicas": 1})
    stored = again.client.get_run(run.run_id).data
    assert stored.params["optimizer"] == "adam" and stored.params["replicas"] == "1"
    assert stored.tags["trial_status"] == "RUNNING" and stored.tags["cnnkeras.pid"]
    tracking.end_run(again)
