"""The model a search delivers is a model like any other: predict and inspect take it."""

from __future__ import annotations

import pytest
from PIL import Image

from cnnkeras.data import idx


@pytest.mark.slow  # two processes on a search; test_api's tune checks the registered winner
def test_predict_and_inspect_take_the_registered_search_winner(searched_store, mnist_dir,
                                                              tmp_path, run_cli):
    uri, _ = searched_store
    images = idx.read_idx(next(mnist_dir.glob("t10k-images*")))
    Image.fromarray(images[0]).save(tmp_path / "digit.png")  # a real MNIST 7, 28x28
    env = {"MLFLOW_TRACKING_URI": uri}
    done = run_cli("predict", "models:/lecture_digits/1", str(tmp_path / "digit.png"),
                   "--top-k", "3", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == str(tmp_path / "digit.png") and len(lines) == 4
    assert {line.split()[1] for line in lines[1:]} <= {str(i) for i in range(10)}
    done = run_cli("inspect", "models:/lecture_digits/latest", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "pixels" in done.stdout and "block1_conv" in done.stdout
    assert "16x16x1" in done.stdout  # the winner's input: lecture_digits' 16x16 digits
