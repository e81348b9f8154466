"""The model builders on the tf.nn convolution layers: shapes, parameter counts, geometry, one
training step on their own (digits-derived) data."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnkeras
from cnnkeras import data, training
from cnnkeras.architectures.nn_segmentation import receptive_field
from cnnkeras.architectures.nn_variants import separable_savings, standard_twin_savings
from cnnkeras.cli import main
from cnnkeras.data import derived
from cnnkeras.geometry import GeometryError
from cnnkeras.layers import (
    NNAtrousConv2D,
    NNConv1D,
    NNConv2DTranspose,
    NNConv3D,
    NNDepthwiseConv2D,
    NNSeparableConv2D,
)
from cnnkeras.registry import ARCHITECTURES

# name -> (the tf.nn layer it is built on, parameters at its default input, by hand below)
VARIANTS = {
    # NNConv1D 5x28x32 + BN 4x32, 5x32x64 + BN 4x64, fc 64x64+64, softmax 64x10+10
    "conv1d_sequence": (NNConv1D, 4480 + 128 + 10240 + 256 + 4160 + 650),
    # NNConv3D 27x1x16 + BN 64, 27x16x32 + BN 128, fc 32x64+64, softmax 64x10+10
    "conv3d_volume": (NNConv3D, 432 + 64 + 13824 + 128 + 2112 + 650),
    # 4 x (atrous 3x3, 32 filters + BN): 9x1x32+128, 3 x (9x32x32+128); 1x1 head 32x11+11
    "atrous_segmenter": (NNAtrousConv2D, 288 + 128 + 3 * (9216 + 128) + 363),
    # enc 9x1x32+128, 9x32x64+256; bottleneck 2 x (9x64x64+256); dec 9x64x32+128,
    # 9x32x32+128; 1x1 head 32x11+11
    "transpose_decoder": (NNConv2DTranspose, 416 + 18688 + 2 * 37120 + 18560 + 9344 + 363),
    # stem 9x16+64; sep blocks (dw 9*in + pw in*out + BN 4*out): 16->32, 32->64, 64->128; 128x10+10
    "separable_cnn": (NNSeparableConv2D, 208 + 784 + 2592 + 9280 + 1290),
}


def classes_for(name: str) -> int:
    return 11 if ARCHITECTURES.metadata(name)["task"] == "segmentation" else 10


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_builds_at_its_small_input_with_the_output_its_task_needs(name):
    shape = ARCHITECTURES.metadata(name)["small_input_shape"]
    model = cnnkeras.build(name, input_shape=shape, num_classes=classes_for(name))
    out = model(np.random.default_rng(0).random((2, *shape), dtype="float32") * 255)
    if ARCHITECTURES.metadata(name)["task"] == "segmentation":
        assert out.shape == (2, *shape[:2], 11)
    else:
        assert out.shape == (2, 10)
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)
    assert any(isinstance(layer, VARIANTS[name][0]) for layer in model.layers)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parameter_count_at_the_default_input(name):
    model = cnnkeras.build(name, input_shape=cnnkeras.default_input_shape(name),
                           num_classes=classes_for(name))
    assert model.count_params() == VARIANTS[name][1]


def test_separable_saving_over_the_standard_twin():
    # twin blocks: 9x16x32 + 128, 9x32x64 + 256, 9x64x128 + 512; stem and head as before
    savings = separable_savings((28, 28, 1), 10)
    assert (savings.separable, savings.standard_twin) == (14154, 208 + 4736 + 18688 + 74240 + 1290)
    assert str(savings) == "separable: 14,154 params, standard twin: 99,162 params, saving 7.0x"
    twin = cnnkeras.build("separable_cnn", input_shape=(28, 28, 1), num_classes=10,
                          standard_twin=True)
    assert not any(isinstance(layer, (NNSeparableConv2D, NNDepthwiseConv2D))
                   for layer in twin.layers)
    assert twin.get_layer("block3_conv").kernel.shape == (3, 3, 64, 128)


def test_inspect_reports_the_saving_for_builders_with_a_standard_twin(capsys):
    model = cnnkeras.build("atrous_segmenter", input_shape=(12, 12, 1), num_classes=11)
    assert standard_twin_savings("atrous_segmenter", model) is None
    assert main(["inspect", "separable_cnn", "--input-shape", "16,16,1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "separable: 14,154 params, standard twin: 99,162 params, saving 7.0x")


def test_depthwise_block_style_is_mobilenet_depthwise_then_pointwise():
    model = cnnkeras.build("separable_cnn", input_shape=(16, 16, 1), num_classes=10,
                           block_style="depthwise", depth_multiplier=2)
    assert isinstance(model.get_layer("block2_dwconv"), NNDepthwiseConv2D)
    assert model.get_layer("block2_dwconv").kernel.shape == (3, 3, 32, 2)
    assert model.get_layer("block2_pwconv").kernel.shape == (1, 1, 64, 64)


def test_atrous_receptive_field_covers_a_digit_without_pooling():
    assert receptive_field((3, 3, 3, 3), (1, 2, 4, 8)) == 31
    model = cnnkeras.build("atrous_segmenter", input_shape=(41, 41, 1), num_classes=2,
                           batch_norm=False)
    for layer in model.layers:  # positive weights keep every ReLU open
        if layer.weights:
            layer.set_weights([np.full(w.shape, 0.01, "float32") for w in layer.get_weights()])
    features = keras.Model(model.input, model.get_layer("block4_relu").output)
    image = tf.ones((1, 41, 41, 1))
    with tf.GradientTape() as tape:
        tape.watch(image)
        centre = features(image)[0, 20, 20, 0]
    support = np.argwhere(np.asarray(tape.gradient(centre, image))[0, :, :, 0] != 0)
    assert (support.min(axis=0).tolist(), support.max(axis=0).tolist()) == ([5, 5], [35, 35])


def test_transpose_decoder_rejects_settings_whose_sizes_do_not_invert():
    with pytest.raises(GeometryError, match=r"28x28 -> 14x14 -> 7x7 -> 4x4 -> 8x8 .* 32x32"):
        cnnkeras.build("transpose_decoder", input_shape=(28, 28, 1), num_classes=11,
                       filters=(8, 16, 32))
    model = cnnkeras.build("transpose_decoder", input_shape=(28, 28, 1), num_classes=11,
                           kernel_sizes=2, paddings="valid")
    assert model.output_shape == (None, 28, 28, 11)


def test_conv1d_reads_sequences_and_causal_padding():
    model = cnnkeras.build("conv1d_sequence", input_shape=(20, 3), num_classes=4,
                           paddings="causal", dilation_rates=(1, 2))
    assert model.get_layer("block2_conv").dilation_rate == (2,)
    assert model.output_shape == (None, 4)
    with pytest.raises(ValueError, match=r"input_shape=\(4, 20, 3, 1\)"):
        cnnkeras.build("conv1d_sequence", input_shape=(4, 20, 3, 1), num_classes=4)


def test_a_pool_that_does_not_fit_names_its_block():
    with pytest.raises(GeometryError, match="block4_pool"):
        cnnkeras.build("conv1d_sequence", input_shape=(8, 8, 1), num_classes=10,
                       filters=(8, 8, 8, 8))


# --- one training step on each variant's own data -------------------------------------------

DERIVED = {  # name -> how its data derives from the real sklearn digits (None: as they are)
    "conv1d_sequence": None,
    "conv3d_volume": "moving",
    "atrous_segmenter": "segmentation",
    "transpose_decoder": "segmentation",
    "separable_cnn": None,
}


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", image_size=(12, 12), channels=1, batch_size=8,
                     plan=data.SplitPlan(0.1, 0.2, 1337, limit=8))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_one_training_step_on_its_data_gives_a_finite_loss(name, digits):
    kind = DERIVED[name]
    datasets = derived.apply(kind, digits, seed=1337) if kind else digits
    model = cnnkeras.build(name, input_shape=datasets.input_shape,
                           num_classes=datasets.num_classes)
    metrics = training.task_metrics(name, datasets.num_classes)
    training.compile_model(model, optimizer="adam", learning_rate=1e-3, metrics=metrics)
    model.run_eagerly = True  # one step: tracing would cost more than it saves
    images, labels = next(iter(datasets.train))
    before = [w.copy() for w in model.get_weights()]
    result = model.train_on_batch(images, labels, return_dict=True)
    assert np.isfinite(result["loss"]) and result["loss"] > 0
    assert ("mean_iou" in result) == (ARCHITECTURES.metadata(name)["task"] == "segmentation")
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
