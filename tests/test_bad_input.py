"""A user's mistake on the command line: one line on stderr, exit 2, and nothing written.

Each case runs the real CLI's ``main`` inside tmp_path, with MLflow pointed at
tmp_path/m.db, and checks that no MLflow run and no runs/ folder (outputs,
backups) were created. (``tests/test_cli.py`` checks in a fresh process that the
command line prints nothing else.)
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``cli(*args)``: ``cnnkeras ARGS`` in tmp_path -> (exit status, stdout, stderr)."""
    from cnnkeras.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        status = main(list(args))
        printed = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, printed.out, printed.err)

    return run


def runs_in_store(folder: Path) -> int:
    store = folder / "m.db"
    if not store.exists():
        return 0
    with sqlite3.connect(store) as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def assert_one_line_and_nothing_written(result, folder: Path, *, mentions: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnnkeras ") and ": error: " in lines[0]
    assert mentions in lines[0]
    assert runs_in_store(folder) == 0
    assert not (folder / "runs").exists()
    return lines[0]


@pytest.fixture
def mnist_copy(tmp_path, mnist_dir) -> Path:
    """The real MNIST test set, copied so it can be damaged."""
    folder = tmp_path / "mnist"
    shutil.copytree(mnist_dir, folder)
    return folder


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:5000])


def not_gzip(path: Path) -> None:
    path.write_text("these are not the labels you are looking for\n")


@pytest.mark.parametrize("damage, filename, says", [
    (truncate, "t10k-images-idx3-ubyte.gz", "truncated"),
    (not_gzip, "t10k-labels-idx1-ubyte.gz", "not valid gzip data"),
])
def test_a_damaged_idx_file_is_named_in_one_line(mnist_copy, tmp_path, cli, damage, filename,
                                                 says):
    damage(mnist_copy / filename)
    result = cli("train", "lecture_cnn", "--dataset", f"idx:{mnist_copy}",
                     "--epochs", "1")
    line = assert_one_line_and_nothing_written(result, tmp_path, mentions=filename)
    assert says in line and "PREFIX-images-idx3-ubyte[.gz]" in line


@pytest.mark.parametrize("option, says", [
    ("model.options.nonsense=3", "lecture_cnn has no option(s) nonsense. Valid options: filters"),
    ("model.options.filters=(8,8,8,8,8,8,8,8)", "block4_conv: input 1x1"),
], ids=["unknown", "shrinks_below_1x1"])
def test_a_model_option_that_does_not_fit_fails_before_any_run(tmp_path, cli, option, says):
    result = cli("train", "lecture_cnn", "--dataset", "digits", "--epochs", "1",
                     "--set", "data.limit=32", "--set", option)
    assert_one_line_and_nothing_written(result, tmp_path, mentions=says)


def test_train_takes_a_named_experiment_in_place_of_an_architecture(tmp_path, cli):
    # lecture_digits builds lecture_cnn: its option check names that builder, before any data
    result = cli("train", "lecture_digits", "--set", "model.options.nonsense=1")
    line = assert_one_line_and_nothing_written(result, tmp_path, mentions="Valid options: ")
    assert line.startswith("cnnkeras train: error: lecture_cnn has no option(s) nonsense. ")


@pytest.mark.parametrize("model, why", [
    ("model.keras", "it is not a zip archive"),  # Keras said "File not found" for this one
    ("leaf.jpg", "it is a JPEG image"),  # the image given first, as the model
])
def test_predict_with_a_file_that_is_not_a_keras_model(tmp_path, cli, model, why):
    photo = tmp_path / "leaf.jpg"
    Image.new("RGB", (20, 20), (10, 240, 10)).save(photo)
    (tmp_path / "model.keras").write_text("not a model\n")
    result = cli("predict", str(tmp_path / model), str(photo))
    line = assert_one_line_and_nothing_written(result, tmp_path, mentions=model)
    assert f"is not a Keras model: {why}" in line and "Valid: a .keras file" in line
