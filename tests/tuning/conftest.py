"""Tracking stores for the search tests, copied from one made per session.

Creating a fresh SQLite store runs MLflow's whole schema migration (seconds on
two cores); every test still gets its own file, in its own ``tmp_path``.
"""

import shutil

import pytest
from mlflow.tracking import MlflowClient


@pytest.fixture(scope="session")
def template_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def store(template_store, tmp_path, monkeypatch) -> str:
    """MLFLOW_TRACKING_URI at this test's own store, and the test running inside tmp_path."""
    shutil.copyfile(template_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri
