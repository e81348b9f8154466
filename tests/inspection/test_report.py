"""`cnnkeras inspect`, `filters` and `feature-maps` from the command line."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
from PIL import Image

import cnnkeras
from cnnkeras.cli import main
from cnnkeras.inspection import report, viz
from cnnkeras.inspection.analysis import layer_table

LENET5_PARAMETERS = "parameters: trainable 60,000 · non-trainable 840 · total 60,840"


def test_inspect_prints_the_layer_table_and_memory_plainly_when_piped(capsys):
    assert main(["inspect", "lecture_cnn", "--input-shape", "28,28,1", "--batch-size", "50",
                 "--optimizer", "sgd"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("block1_conv"))
    assert line.split()[1:9] == ["Conv2D", "3x3", "1", "valid", "26x26x25", "250", "3", "1"]
    assert "batch 50, float32, sgd" in out
    assert "training: total" in out and "\x1b[" not in out  # no terminal colour codes


def test_alexnet_table_shows_kernel_stride_and_padding_of_conv_and_pooling_rows():
    model = cnnkeras.build("alexnet", input_shape=(227, 227, 3), num_classes=1000)
    header, *lines = report.table_lines(layer_table(model))
    cells = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    window = ("kernel", "stride", "padding", "output")
    assert [cells["conv1_conv"][c] for c in window] == ["11x11", "4", "valid", "55x55x96"]
    assert [cells["conv1_pool"][c] for c in window] == ["3x3", "2", "valid", "27x27x96"]
    assert [cells["fc6"][c] for c in window] == ["", "", "", "4096"]
    assert cells["conv2_pad"]["kernel"] == "" and cells["total"]["params"] == "62,378,344"


def test_a_dilated_kernel_says_its_dilation():
    inputs = keras.Input((9, 9, 1))
    outputs = keras.layers.Conv2D(2, 3, dilation_rate=2, name="dilated")(inputs)
    header, *lines = report.table_lines(layer_table(keras.Model(inputs, outputs)))
    row = dict(zip(header, lines[1], strict=True))
    assert (row["kernel"], row["stride"], row["output"]) == ("3x3 (dilation 2)", "1", "5x5x2")


def test_inspect_lenet5_prints_trainable_and_fixed_parameters(tmp_path, run_cli):
    done = run_cli("inspect", "lenet5", cwd=tmp_path)  # a real pipe, as a user redirects it
    assert done.returncode == 0, done.stderr
    assert LENET5_PARAMETERS in done.stdout.splitlines()


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
    assert LENET5_PARAMETERS in capsys.readouterr().out.splitlines()  # the split survives


@pytest.mark.parametrize("argv,message", [
    (["inspect", "no_such_net"], "is neither a saved .keras file, a runs:/ or models:/ URI nor "
                                 "a registered architecture"),
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


@pytest.fixture
def drawn(monkeypatch):
    """Each figure a command saves: (title, number of panels showing an image)."""
    figures = []
    save = viz.save_png

    def spy(fig, path):
        shown = sum(1 for axis in fig.axes if axis.get_images())
        figures.append((fig.get_suptitle(), shown))
        return save(fig, path)

    monkeypatch.setattr(viz, "save_png", spy)
    return figures


def test_filters_of_an_architecture_name_draw_all_96_and_say_untrained(tmp_path, capsys,
                                                                        drawn):
    assert main(["filters", "alexnet", "--output", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert f"alexnet: built from its name, so the filters are {viz.UNTRAINED_NOTE}" in out
    [(title, shown)] = drawn
    assert shown == 96  # every conv1 filter, not the first 64
    assert title == "alexnet: conv1_conv, 96 filters 11x11, untrained (random initial weights)"
    with Image.open(tmp_path / "f.png") as image:
        assert image.size[0] > image.size[1] > 500  # 12 columns by 8 rows


def test_filters_of_a_saved_trained_model_have_no_untrained_note(tmp_path, capsys, drawn):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(2)], name="tiny")
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_layer("conv").get_weights()[0]
    model.fit(np.ones((4, 8, 8, 1)), np.ones((4, 2)), epochs=1, verbose=0)  # one step
    assert not np.allclose(model.get_layer("conv").get_weights()[0], before)
    model.save(tmp_path / "m.keras")
    assert main(["filters", str(tmp_path / "m.keras"), "--output", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "untrained" not in out and str(tmp_path / "f.png") in out
    assert drawn == [("tiny: conv, 4 filters 3x3", 4)]
