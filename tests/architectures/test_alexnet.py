"""AlexNet and ZFNet: the paper's shapes and parameter counts, one tower and two."""

from __future__ import annotations

import keras
import pytest

import cnnkeras
from cnnkeras.layers import LocalResponseNormalization


def shape(model, layer):
    return tuple(model.get_layer(layer).output.shape[1:])


@pytest.fixture(scope="module")
def alexnet():
    return cnnkeras.build("alexnet", input_shape=(227, 227, 3), num_classes=1000)


def test_alexnet_conv1_is_55x55x96_with_34944_parameters(alexnet):
    assert shape(alexnet, "conv1_conv") == (55, 55, 96)
    assert alexnet.get_layer("conv1_conv").count_params() == 34_944


def test_alexnet_feature_map_sizes_follow_the_paper(alexnet):
    expected = {"conv1_pool": (27, 27, 96), "conv2_conv": (27, 27, 256),
                "conv2_pool": (13, 13, 256), "conv3_conv": (13, 13, 384),
                "conv4_conv": (13, 13, 384), "conv5_pool": (6, 6, 256), "fc6": (4096,),
                "fc7": (4096,), "predictions": (1000,)}
    assert {name: shape(alexnet, name) for name in expected} == expected


def test_alexnet_has_lrn_after_conv1_and_conv2_and_dropout_half(alexnet):
    lrn = [layer.name for layer in alexnet.layers
           if isinstance(layer, LocalResponseNormalization)]
    assert lrn == ["conv1_lrn", "conv2_lrn"]
    pool = alexnet.get_layer("conv1_pool")
    assert (pool.pool_size, pool.strides) == ((3, 3), (2, 2))
    assert [alexnet.get_layer(f"fc{i}_dropout").rate for i in (6, 7)] == [0.5, 0.5]


def test_alexnet_one_tower_parameter_count(alexnet):
    assert alexnet.count_params() == 62_378_344


def test_alexnet_two_towers_group_conv2_conv4_conv5():
    model = cnnkeras.build("alexnet", input_shape=(227, 227, 3), num_classes=1000, groups=2)
    assert model.count_params() == 60_965_224
    grouped = {name: model.get_layer(name).count_params()
               for name in ("conv2_conv", "conv3_conv", "conv4_conv", "conv5_conv")}
    assert grouped == {"conv2_conv": 307_456, "conv3_conv": 885_120,
                       "conv4_conv": 663_936, "conv5_conv": 442_624}


def test_zfnet_shapes_and_parameter_count():
    model = cnnkeras.build("zfnet", input_shape=(224, 224, 3), num_classes=1000)
    expected = {"conv1_conv": (110, 110, 96), "conv1_pool": (55, 55, 96),
                "conv2_conv": (26, 26, 256), "conv2_pool": (13, 13, 256),
                "conv3_conv": (13, 13, 512), "conv4_conv": (13, 13, 1024),
                "conv5_pool": (6, 6, 512)}
    assert {name: shape(model, name) for name in expected} == expected
    assert model.get_layer("conv1_conv").kernel.shape == (7, 7, 3, 96)
    assert model.count_params() == 107_627_624


@pytest.mark.parametrize("name,smallest", [("alexnet", 67), ("zfnet", 53)])
def test_smallest_input_builds_and_one_less_names_the_failing_layer(name, smallest):
    model = cnnkeras.build(name, input_shape=(smallest, smallest, 3), num_classes=2,
                           dense_units=8)
    assert shape(model, "conv5_pool")[:2] == (1, 1)
    with pytest.raises(ValueError, match="conv5_pool"):
        cnnkeras.build(name, input_shape=(smallest - 1, smallest - 1, 3), num_classes=2)


def test_alexnet_rejects_three_towers():
    with pytest.raises(ValueError, match="groups must be 1"):
        cnnkeras.build("alexnet", input_shape=(227, 227, 3), num_classes=10, groups=3)


def test_alexnet_without_lrn_has_no_lrn_layer():
    model = cnnkeras.build("alexnet", input_shape=(67, 67, 3), num_classes=2, lrn=False,
                           dense_units=8)
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in model.layers)
    assert isinstance(model.get_layer("conv1_pool"), keras.layers.MaxPooling2D)
