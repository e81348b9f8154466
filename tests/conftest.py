"""Shared fixtures: a temporary MLflow store and working directory, and the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def tracking_store(tmp_path, monkeypatch) -> str:
    """MLFLOW_TRACKING_URI at a fresh SQLite file, and the test running inside tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


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
