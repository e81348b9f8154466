"""Inception v3 behind build(): parameter count, the weights= contract, the frozen_base form."""

from __future__ import annotations

import warnings

import keras
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


def test_frozen_base_form_nests_a_frozen_base_under_preprocessing_and_a_dropout_head():
    model = cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=5,
                           frozen_base=True, dropout=0.2, augment=True)
    assert [layer.name for layer in model.layers] == [
        "image", "pixels", "augmentation", "preprocess", "inception_v3", "avg_pool",
        "head_dropout", "predictions"]
    base = model.get_layer("inception_v3")
    assert isinstance(base, keras.Model) and not base.trainable
    assert model.count_params() == 21_802_784 + 2048 * 5 + 5  # the notop base and the head
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 2048 * 5 + 5
    assert model.get_layer("head_dropout").rate == 0.2
    pixels = np.linspace(0, 255, 75 * 75 * 3, dtype="float32").reshape(1, 75, 75, 3)
    preprocess = keras.Model(model.input, model.get_layer("preprocess").output)
    np.testing.assert_allclose(preprocess(pixels, training=False),  # what preprocess_input
                               keras.applications.inception_v3.preprocess_input(pixels.copy()),
                               atol=1e-5)  # computes from the same [0, 255] pixels


def test_frozen_base_loads_base_weights_and_accepts_the_text_none(tmp_path):
    first = cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3,
                           frozen_base=True, weights="none")
    path = tmp_path / "base.weights.h5"
    first.get_layer("inception_v3").save_weights(path)
    second = cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3,
                            frozen_base=True, weights=str(path))
    assert all(np.array_equal(a, b) for a, b in zip(
        first.get_layer("inception_v3").get_weights(),
        second.get_layer("inception_v3").get_weights(), strict=True))


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_of_another_model_is_one_clear_error(tmp_path):
    other = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(other)
    with pytest.raises(ValueError, match="could not load the Inception v3 base weights") as err:
        cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3,
                       frozen_base=True, weights=str(other))
    assert len(str(err.value).splitlines()) == 1


def test_offline_imagenet_download_is_one_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="could not fetch the ImageNet weights.*--weights"):
            cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3,
                           frozen_base=True, weights="imagenet")


@pytest.mark.parametrize("options,match", [
    ({"dropout": 1.0}, "dropout must be a number in \\[0, 1\\)"),
    ({"augment": True}, "augment=True needs frozen_base=True"),
])
def test_inception_v3_head_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=3, **options)
