"""Shared fixtures: a temporary MLflow store and working directory, and the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cnnkeras  # noqa: E402,F401  before any test imports TensorFlow: its oneDNN choice

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def tracking_store(tmp_path, monkeypatch) -> str:
    """MLFLOW_TRACKING_URI at a fresh SQLite file, and the test running inside tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture
def artifact_paths():
    """``walk(client, run_id) -> [path, ...]``: every artifact file of a run, folders walked."""
    def walk(client, run_id, path=None):
        found = []
        for item in client.list_artifacts(run_id, path):
            found.extend(walk(client, run_id, item.path) if item.is_dir else [item.path])
        return found

    return walk


def shared_data(name: str) -> Path:
    """A folder of the real data beside the checkout; the test is skipped when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data folder {path} is not present")
    return path


@pytest.fixture
def mnist_dir() -> Path:
    return shared_data("mnist")


@pytest.fixture
def flowers_dir() -> Path:
    return shared_data("flowers")


@pytest.fixture(scope="session")
def searched_store(tmp_path_factory):
    """A real store: a three-trial search and one training run on tiny digits.

    Yields (tracking URI, folder). Built once per test session, in-process.
    """
    import experiments
    from cnnkeras.cli import main
    from cnnkeras.config import apply_overrides
    from tuning.search import run_search

    folder = tmp_path_factory.mktemp("searched")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tiny = ["train.epochs=2", "data.limit=120", "runtime.verbose=0"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        config = apply_overrides(experiments.get("lecture_digits"),
                                 [*tiny, "tune.max_trials=3", f"tune.directory={folder / 't'}",
                                  "model.options.kernel_sizes=3"])
        run_search(config, verbose=0)
        assert main(["train", "lecture_cnn", "--dataset", "digits", "--epochs", "2",
                     *[arg for item in tiny for arg in ("--set", item)]]) == 0
    yield uri, folder


@pytest.fixture
def run_cli():
    """``run_cli(*args, cwd=, env=)``: ``python -m cnnkeras ARGS`` in a fresh process, as a
    user types it (no TF log level set); returns the ``CompletedProcess``."""
    return _run_cli


def _run_cli(*args: str, cwd, env: dict | None = None, timeout: float = 300):
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "cnnkeras", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


class Loopback:
    """Servers a test starts on 127.0.0.1: a free port, and waiting for them to answer."""

    @staticmethod
    def free_port() -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    @staticmethod
    def answers(url: str) -> bool:
        import urllib.request

        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except OSError:
            return False

    @classmethod
    def wait_for_http(cls, url: str, process, timeout: float = 90) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{process.args} exited with {process.returncode}")
            if cls.answers(url):
                return
            time.sleep(0.5)
        pytest.fail(f"{url} did not answer")


@pytest.fixture(scope="session")
def loopback():
    return Loopback
