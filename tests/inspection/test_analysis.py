"""The course's reports: layer table (windows, receptive fields, FLOPs, activations), memory."""

from __future__ import annotations

import keras
import pytest

import cnnkeras
from cnnkeras.inspection import report
from cnnkeras.inspection.analysis import (
    layer_table,
    memory_report,
    model_flops,
    parameter_counts,
)

# --- layer table and FLOPs -------------------------------------------------------------------

@pytest.fixture(scope="module")
def alexnet_rows():
    model = cnnkeras.build("alexnet", input_shape=(227, 227, 3), num_classes=1000)
    return {row.name: row for row in layer_table(model)}, model


def test_layer_table_receptive_fields_and_jumps_of_alexnet(alexnet_rows):
    rows, _ = alexnet_rows
    expected = {"conv1_conv": (11, 4), "conv1_pool": (19, 8), "conv2_conv": (51, 8),
                "conv2_pool": (67, 16), "conv5_conv": (163, 16), "conv5_pool": (195, 32)}
    got = {name: (rows[name].receptive_field[0], rows[name].jump[0]) for name in expected}
    assert got == expected
    assert rows["fc6"].receptive_field == (227, 227) and rows["fc6"].jump is None


def test_layer_table_flops_params_and_activations_of_alexnet(alexnet_rows):
    rows, model = alexnet_rows
    conv1 = rows["conv1_conv"]
    assert conv1.output_shape == (55, 55, 96) and conv1.params == 34_944
    assert conv1.flops == 2 * 55 * 55 * 96 * 11 * 11 * 3  # 105,415,200 multiply-adds
    assert conv1.activations == 290_400
    assert rows["fc6"].flops == 2 * 9216 * 4096
    assert sum(row.params for row in rows.values()) == model.count_params()
    assert model_flops(model) == 2_270_512_192


def test_alexnet_pixels_row_is_preprocessing_that_costs_nothing(alexnet_rows):
    rows, _ = alexnet_rows
    assert [row.name for row in rows.values()][:3] == ["image", "pixels", "conv1_conv"]
    pixels = rows["pixels"]
    assert (pixels.kind, pixels.params, pixels.flops, pixels.preprocessing) == (
        "Rescaling", 0, 0, True)
    assert (pixels.receptive_field, pixels.jump) == ((1, 1), (1, 1))
    assert [name for name, row in rows.items() if row.preprocessing] == ["pixels"]


def test_alexnet_activation_memory_counts_the_image_once(alexnet_rows):
    """The course's figures: the 227x227x3 image once, however the model scales it."""
    rows, model = alexnet_rows
    memory = memory_report(model)
    assert memory.input_values == 227 * 227 * 3 == 154_587
    assert memory.activation_values == 2_248_904  # every layer's output but the image's
    assert memory.peak_pair_values == 2 * 290_400  # conv1 and its ReLU
    [*_, total] = report.table_lines(list(rows.values()))
    assert total[-1] == f"{154_587 + 2_248_904:,}"


def test_alexnet_windows_give_each_output_size_by_the_course_formula(alexnet_rows):
    rows, _ = alexnet_rows
    conv1, pool1, fc6 = rows["conv1_conv"], rows["conv1_pool"], rows["fc6"]
    assert (conv1.kernel, conv1.stride, conv1.padding) == ((11, 11), (4, 4), "valid")
    assert (pool1.kernel, pool1.stride, pool1.padding) == ((3, 3), (2, 2), "valid")
    assert (fc6.kernel, fc6.stride, fc6.padding) == (None, None, None)
    assert rows["conv2_pad"].kernel is None and rows["conv1_relu"].padding is None
    ordered = list(rows.values())  # a chain: each layer reads the row above it
    windows = 0
    for above, row in zip(ordered[:-1], ordered[1:], strict=True):
        if row.kernel is not None:
            assert row.padding == "valid"  # AlexNet pads with ZeroPadding2D rows instead
            width, kernel, stride = above.output_shape[0], row.kernel[0], row.stride[0]
            assert row.output_shape[0] == (width - kernel) // stride + 1, row.name
            windows += 1
    assert windows == 8  # five convolutions and three max-poolings


def test_window_of_dilated_transposed_and_global_layers():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(1, 3, dilation_rate=2, padding="same", name="dilated")(inputs)
    x = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", name="up")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    rows = {row.name: row for row in layer_table(keras.Model(inputs, x))}
    dilated, up = rows["dilated"], rows["up"]
    assert (dilated.kernel, dilated.dilation, dilated.padding) == ((3, 3), (2, 2), "same")
    assert (up.kernel, up.stride, up.padding, up.output_shape) == ((3, 3), (2, 2), "same",
                                                                    (16, 16, 1))
    assert rows["gap"].kernel is None and rows["gap"].stride is None


def test_dilation_widens_the_receptive_field():
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(1, 3, dilation_rate=2, name="dilated")(inputs)
    x = keras.layers.Conv2D(1, 3, strides=2, name="strided")(x)
    rows = {row.name: row for row in layer_table(keras.Model(inputs, x))}
    assert rows["dilated"].receptive_field == (5, 5) and rows["dilated"].jump == (1, 1)
    assert rows["strided"].receptive_field == (7, 7) and rows["strided"].jump == (2, 2)


def test_branches_take_the_widest_receptive_field():
    model = cnnkeras.build("googlenet", input_shape=(224, 224, 3), num_classes=1000)
    rows = {row.name: row for row in layer_table(model)}
    branch_fields = [rows[f"inception3a_{b}_relu"].receptive_field[0]
                     for b in ("1x1", "3x3", "5x5", "pool_proj")]
    assert rows["inception3a_output"].receptive_field[0] == max(branch_fields)
    assert branch_fields[2] - branch_fields[0] == 4 * 8  # a 5x5 on a jump of 8
    assert 3.0e9 < model_flops(model) < 3.3e9  # the paper's ~1.5 billion multiply-adds


def test_two_towers_halve_the_grouped_convolutions_flops():
    flops = [
        {row.name: row.flops for row in layer_table(cnnkeras.build(
            "alexnet", input_shape=(67, 67, 3), num_classes=2, groups=groups, dense_units=8))}
        for groups in (1, 2)
    ]
    assert [flops[1][f"conv{i}_conv"] * 2 for i in (2, 4, 5)] == [
        flops[0][f"conv{i}_conv"] for i in (2, 4, 5)]
    assert flops[1]["conv3_conv"] == flops[0]["conv3_conv"]


def test_lenet5_table_counts_the_connection_table_and_rbf():
    rows = {r.name: r for r in layer_table(cnnkeras.build("lenet5", input_shape=(32, 32, 1),
                                                          num_classes=10))}
    assert rows["c3_conv"].flops == 2 * 10 * 10 * 25 * 60
    assert rows["rbf"].flops == 2 * 84 * 10
    assert rows["c5_conv"].receptive_field == (32, 32)
    assert rows["s2_subsample"].kernel == (2, 2) and rows["s2_subsample"].stride == (2, 2)
    assert rows["c3_conv"].padding == "valid"  # no padding attribute: Keras' default


def test_lenet5_splits_trainable_from_the_fixed_rbf_parameters():
    model = cnnkeras.build("lenet5", input_shape=(32, 32, 1), num_classes=10)
    assert parameter_counts(model) == (60_000, 84 * 10)


# --- memory: the worked exercise ----------------------------------------------------------------

@pytest.fixture(scope="module")
def exercise():
    """Three 3x3 stride-2 SAME convolutions with 100, 200, 400 maps on 200x300x3 images."""
    inputs = keras.Input((200, 300, 3))
    x = inputs
    for index, filters in enumerate((100, 200, 400), 1):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                name=f"conv{index}")(x)
    return keras.Model(inputs, x)


def test_exercise_parameters_and_activations(exercise):
    rows = layer_table(exercise)
    assert exercise.count_params() == 903_400
    assert [row.params for row in rows[1:]] == [2_800, 180_200, 720_400]
    assert [row.activations for row in rows[1:]] == [1_500_000, 750_000, 380_000]


def test_exercise_memory_for_one_image_and_a_batch_of_50(exercise):
    one = memory_report(exercise, batch_size=1, optimizer="sgd")
    assert one.parameter_bytes == 3_613_600
    assert one.inference_activation_bytes == 9_000_000  # layers 1 and 2: 6 MB + 3 MB
    assert one.inference_bytes == 12_613_600
    batch = memory_report(exercise, batch_size=50, optimizer="sgd")
    assert batch.training_activation_bytes == 526_000_000
    assert batch.input_bytes == 36_000_000
    bare = batch.parameter_bytes + batch.training_activation_bytes + batch.input_bytes
    assert bare == 565_613_600  # the notes' 565.6 MB
    assert batch.training_bytes == bare + 3_613_600  # plus one gradient per parameter
    adam = memory_report(exercise, batch_size=50, optimizer="adam")
    assert adam.optimizer_bytes == 2 * 3_613_600
    assert memory_report(exercise, 50, optimizer="sgd_momentum").optimizer_bytes == 3_613_600
    assert adam.training_bytes == 576_454_400


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_halves_every_figure(exercise, dtype):
    full = memory_report(exercise, batch_size=50, dtype="float32")
    half = memory_report(exercise, batch_size=50, dtype=dtype)
    assert half.training_bytes * 2 == full.training_bytes
    assert half.inference_bytes == 226_806_800


def test_memory_report_rejects_unknown_settings(exercise):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        memory_report(exercise, optimizer="lbfgs")
    with pytest.raises(ValueError, match="dtype must be one of"):
        memory_report(exercise, dtype="int8")
