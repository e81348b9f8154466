"""Inception v3 behind build(): parameter count and the weights= contract."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkeras


def test_inception_v3_parameter_count_at_299():
    model = cnnkeras.build("inception_v3", input_shape=(299, 299, 3), num_classes=1000)
    assert model.count_params() == 23_851_784
    assert tuple(model.get_layer("mixed10").output.shape[1:]) == (8, 8, 2048)


def test_inception_v3_loads_a_weights_file_it_saved(tmp_path):
    first = cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3)
    kernel, bias = first.get_layer("predictions").get_weights()
    first.get_layer("predictions").set_weights([np.full_like(kernel, 0.5), bias])
    path = tmp_path / "inception.weights.h5"
    first.save_weights(path)
    second = cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3,
                            weights=str(path))
    assert (second.get_layer("predictions").get_weights()[0] == 0.5).all()
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights(),
                                                 strict=True))


def test_inception_v3_rejects_a_missing_weights_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3,
                       weights=str(tmp_path / "absent.weights.h5"))


@pytest.mark.parametrize("options,match", [
    ({"input_shape": (75, 75, 1), "weights": "imagenet"}, "3 input channels"),
    ({"input_shape": (74, 74, 3)}, "at least 75x75"),
    ({"input_shape": (75, 75, 3), "weights": 3}, "None, 'imagenet' or a path"),
])
def test_inception_v3_validates_before_building(options, match):
    with pytest.raises(ValueError, match=match):
        cnnkeras.build("inception_v3", num_classes=3, **options)
