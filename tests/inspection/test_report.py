"""`cnnkeras inspect`, `filters` and `feature-maps` from the command line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import cnnkeras
from cnnkeras.cli import main
from cnnkeras.inspection import report


def test_inspect_prints_the_layer_table_and_memory_plainly_when_piped(capsys):
    assert main(["inspect", "lecture_cnn", "--input-shape", "28,28,1", "--batch-size", "50",
                 "--optimizer", "sgd"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("block1_conv"))
    assert line.split()[2:6] == ["26x26x25", "250", "3", "1"]
    assert "batch 50, float32, sgd" in out
    assert "training: total" in out and "\x1b[" not in out  # no terminal colour codes


def test_print_inspection_returns_the_report_for_the_given_batch():
    model = cnnkeras.build("lenet5", input_shape=(32, 32, 1), num_classes=10)
    buffer = io.StringIO()
    memory = report.print_inspection(model, batch_size=8, dtype="bfloat16", out=buffer)
    assert memory.batch_size == 8 and memory.bytes_per_value == 2
    assert "c3_conv" in buffer.getvalue() and "1,516" in buffer.getvalue()


def test_inspect_a_saved_model_file(tmp_path, capsys):
    model = cnnkeras.build("lenet5", input_shape=(32, 32, 1), num_classes=10)
    model.save(tmp_path / "lenet5.keras")
    assert main(["inspect", str(tmp_path / "lenet5.keras")]) == 0
    assert "60,840" in capsys.readouterr().out  # 60,000 trainable + 840 fixed RBF bitmaps


@pytest.mark.parametrize("argv,message", [
    (["inspect", "no_such_net"], "neither a saved .keras file nor a registered architecture"),
    (["inspect", "lecture_cnn", "--input-shape", "28;28"], "--input-shape must be"),
    (["inspect", "missing.keras"], "does not exist"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_filters_and_feature_maps_write_pngs(tmp_path, capsys):
    assert main(["filters", "lecture_cnn", "--output", str(tmp_path / "f.png")]) == 0
    synthetic = (np.random.default_rng(0).random((40, 30, 3)) * 255).astype("uint8")
    Image.fromarray(synthetic).save(tmp_path / "synthetic.png")  # a synthetic noise image
    assert main(["feature-maps", "lecture_cnn", "--image", str(tmp_path / "synthetic.png"),
                 "--layers", "block1_conv", "block2_relu", "--output",
                 str(tmp_path / "m.png")]) == 0
    for name in ("f.png", "m.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert str(tmp_path / "m.png") in capsys.readouterr().out
