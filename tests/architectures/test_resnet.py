"""ResNets: one stage table, golden parameter counts, and keras.applications equivalence."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import cnnkeras
from cnnkeras.geometry import GeometryError

# Table 1 of the paper: residual units in conv2_x, conv3_x, conv4_x, conv5_x
PAPER_UNITS = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
}
# (trainable, all incl. BN moving statistics) at 224x224x3, 1000 classes, no conv biases;
# the trainable counts are the 11.7M, 21.8M, 25.6M, 44.5M and 60.2M usually quoted
GOLDEN = {
    "resnet18": (11_689_512, 11_699_112),
    "resnet34": (21_797_672, 21_814_696),
    "resnet50": (25_557_032, 25_610_152),
    "resnet101": (44_549_160, 44_654_504),
    "resnet152": (60_192_808, 60_344_232),
}


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_resnet_parameter_counts_and_the_papers_stage_table(name):
    model = cnnkeras.build(name, input_shape=(224, 224, 3), num_classes=1000)
    assert (trainable(model), model.count_params()) == GOLDEN[name]
    units = tuple(sum(re.fullmatch(rf"conv{stage}_block\d+_out", layer.name) is not None
                      for layer in model.layers) for stage in range(2, 6))
    assert units == PAPER_UNITS[name]
    last = model.get_layer(f"conv5_block{PAPER_UNITS[name][-1]}_out")
    assert tuple(last.output.shape[1:3]) == (7, 7)


def test_basic_unit_projects_only_where_the_shape_changes():
    model = cnnkeras.build("resnet34", input_shape=(64, 64, 3), num_classes=10)
    names = {layer.name for layer in model.layers}
    projections = sorted(n for n in names if n.endswith("_0_conv"))
    assert projections == ["conv3_block1_0_conv", "conv4_block1_0_conv", "conv5_block1_0_conv"]
    assert model.get_layer("conv3_block1_0_conv").strides == (2, 2)


def test_resnet_batch_norm_statistics_follow_the_data_within_a_short_run():
    # momentum 0.9: after 30 training steps on one batch the moving mean holds 1 - 0.9**30
    # (96%) of that batch's mean; Keras' 0.99 would hold 26%, and a short run tests at chance
    model = cnnkeras.build("resnet18", input_shape=(32, 32, 3), num_classes=10)
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    stem = keras.Model(model.input, model.get_layer("conv1_conv").output)
    batch_mean = np.asarray(stem(images)).mean(axis=(0, 1, 2))
    for _ in range(30):
        model(images, training=True)
    moving = np.asarray(model.get_layer("conv1_bn").moving_mean)
    held = float(np.dot(moving, batch_mean) / np.dot(batch_mean, batch_mean))
    assert 0.9 < held < 1.0
    assert {layer.momentum for layer in model.layers if layer.name.endswith("_bn")} == {0.9}


def test_resnet50_with_conv_bias_equals_keras_applications_weight_for_weight():
    ours = cnnkeras.build("resnet50", input_shape=(32, 32, 3), num_classes=7, conv_bias=True)
    reference = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=7)
    assert ours.count_params() == reference.count_params() == 23_602_055
    for layer in reference.layers:
        if layer.weights:
            ours.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    # ours takes pixels in [0, 255] and scales them (layer "pixels") before Keras' layers
    np.testing.assert_allclose(np.asarray(ours(x * 255)), np.asarray(reference(x)), rtol=1e-5,
                               atol=1e-6)


def test_resnet50_with_conv_bias_at_224_has_keras_applications_count():
    model = cnnkeras.build("resnet50", input_shape=(224, 224, 3), num_classes=1000,
                           conv_bias=True)
    assert model.count_params() == 25_636_712  # keras.applications.ResNet50(weights=None)


@pytest.mark.slow
def test_resnet152_with_conv_bias_has_keras_applications_count():
    model = cnnkeras.build("resnet152", input_shape=(224, 224, 3), num_classes=1000,
                           conv_bias=True)
    reference = keras.applications.ResNet152(weights=None)
    assert model.count_params() == reference.count_params() == 60_419_944


def test_resnet_rejects_inputs_below_32():
    with pytest.raises(GeometryError, match=r"at least 32x32.*conv5_block1: input 1x1"):
        cnnkeras.build("resnet18", input_shape=(16, 16, 3), num_classes=10)
