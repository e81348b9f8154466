"""Pictures of what a CNN learns: filter grids and feature maps."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import cnnkeras
from cnnkeras.data.images import fit_image
from cnnkeras.inspection import report, viz
from cnnkeras.transfer.saving import save_classifier


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
    fitted = viz.model_input(lecture, pixels)  # in [0, 255], what a built model takes
    assert fitted.shape == (28, 28, 1) and fitted.dtype == np.float32
    expected = fit_image(pixels, size=(28, 28), channels=1, fit="resize").numpy()
    np.testing.assert_array_equal(fitted, expected)
    assert fitted.max() > 1
    np.testing.assert_array_equal(viz.model_input(lecture, pixels / 255.0), fitted)
    np.testing.assert_allclose(viz.model_input(lecture, pixels, (0, 1)), expected / 255,
                               atol=1e-7)  # an older model that records [0, 1]


def test_feature_maps_feed_each_model_the_range_it_records(lecture, tmp_path):
    """A model built today (pixels in [0, 255]) and the same layers saved as an older model
    that took [0, 1] show the same maps: each is fed its own recorded range."""
    older = keras.Model(lecture.get_layer("pixels").output, lecture.outputs, name="older")
    today = save_classifier(lecture, tmp_path / "today.keras", [str(i) for i in range(10)])
    before = save_classifier(older, tmp_path / "older.keras", [str(i) for i in range(10)],
                             input_range=(0, 1))
    assert report.resolve("lecture_cnn")[1] == (0, 255)  # built from its name
    image = (np.random.default_rng(2).random((28, 28)) * 255).astype("uint8")  # synthetic
    maps = []
    for path, recorded in ((today, (0, 255)), (before, (0, 1))):
        model, input_range = report.resolve(str(path))
        assert input_range == recorded
        maps.append(viz.feature_maps(model, image, ["block1_conv"], input_range=input_range))
    np.testing.assert_allclose(maps[0][0], maps[1][0], rtol=1e-5, atol=1e-6)
    assert np.abs(maps[0][0]).max() > 0


def test_default_feature_layers_spread_over_a_deep_network():
    model = cnnkeras.build("resnet18", input_shape=(32, 32, 3), num_classes=2)
    names = viz.default_feature_layers(model)
    assert names[0] == "conv1_conv" and names[-1].startswith("conv5_") and len(names) == 3
