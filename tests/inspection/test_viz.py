"""Pictures of what a CNN learns: filter grids and feature maps."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import cnnkeras
from cnnkeras.data.images import fit_image
from cnnkeras.inspection import viz


def png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


@pytest.fixture(scope="module")
def lecture():
    keras.utils.set_random_seed(0)
    return cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10)


def test_plot_filters_draws_the_first_layer_filters(lecture, tmp_path):
    path = viz.plot_filters(lecture, tmp_path / "filters.png")
    width, height = png_size(path)
    assert width > 100 and height > 100
    images = viz.filter_images(viz.first_conv_layer(lecture))
    assert images.shape == (25, 3, 3, 1)
    assert np.allclose(images.min(axis=(1, 2, 3)), 0) and np.allclose(images.max(axis=(1, 2, 3)), 1)


def test_rgb_filters_keep_their_colours():
    model = cnnkeras.build("alexnet", input_shape=(67, 67, 3), num_classes=2, dense_units=8)
    layer = viz.first_conv_layer(model)
    assert layer.name == "conv1_conv"
    assert viz.filter_images(layer, max_filters=10).shape == (10, 11, 11, 3)
    assert viz.filter_images(layer).shape == (96, 11, 11, 3)  # every filter by default


def test_feature_maps_low_mid_high(lecture, tmp_path):
    image = np.random.default_rng(0).random((28, 28)).astype("float32")  # synthetic noise
    names = viz.default_feature_layers(lecture)
    assert names == ["block1_conv", "block2_conv"]
    maps = viz.feature_maps(lecture, image, names)
    assert [m.shape for m in maps] == [(26, 26, 25), (11, 11, 50)]
    path = viz.plot_feature_maps(lecture, image, names, tmp_path / "maps.png", max_maps=4)
    assert png_size(path)[0] > 100


def test_model_input_fits_a_picture_as_the_training_pipeline_does(lecture):
    pixels = (np.random.default_rng(1).random((40, 30, 3)) * 255).astype("uint8")  # synthetic
    fitted = viz.model_input(lecture, pixels)
    assert fitted.shape == (28, 28, 1) and fitted.dtype == np.float32
    expected = fit_image(pixels, size=(28, 28), channels=1, fit="resize").numpy() / 255.0
    np.testing.assert_allclose(fitted, expected, atol=1e-7)
    np.testing.assert_array_equal(viz.model_input(lecture, pixels / 255.0), fitted)


def test_default_feature_layers_spread_over_a_deep_network():
    model = cnnkeras.build("resnet18", input_shape=(32, 32, 3), num_classes=2)
    names = viz.default_feature_layers(model)
    assert names[0] == "conv1_conv" and names[-1].startswith("conv5_") and len(names) == 3
