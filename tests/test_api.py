"""The Python API a notebook uses: cnnkeras.train, cnnkeras.tune, cnnkeras.load_model."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkeras


def test_train_returns_the_run_metrics_and_model_and_registers_on_request(tracking_store):
    result = cnnkeras.train("lecture_cnn", dataset="digits", epochs=1, register=True,
                            overrides=["data.limit=300", "runtime.verbose=0"])
    assert len(result.run_id) == 32 and result.model_uri.startswith("models:/m-")
    assert set(result.test_metrics) == {"loss", "accuracy"}
    assert result.registered == "models:/cnnkeras-train/1"
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    loaded = cnnkeras.load_model(result.registered)
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               result.model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_tune_returns_the_search_and_its_registered_winner(tracking_store, tmp_path):
    search = cnnkeras.tune("lecture_digits", max_trials=1, epochs=1, overrides=[
        "data.limit=150", "runtime.verbose=0", f"tune.directory={tmp_path / 'tuner'}"])
    assert search.summary.count("COMPLETED") == 1
    assert search.winner.registered == "models:/lecture_digits/1"
    assert 0 <= search.winner.test_metrics["test_accuracy"] <= 1


def test_a_setting_the_api_does_not_know_is_one_clear_error(tracking_store):
    with pytest.raises(ValueError, match="Unknown setting.*epoch.*Valid: dataset"):
        cnnkeras.train("lecture_cnn", epoch=3)


def test_an_architecture_named_alone_trains_with_its_papers_recipe_when_it_has_one():
    import experiments
    from cnnkeras.cli import api

    recipe = api.resolve(api.base_config("lenet5"), dataset="idx:/data/mnist")
    assert recipe == api.resolve(experiments.get("lenet5_mnist"), dataset="idx:/data/mnist")
    assert (recipe.train.epochs, recipe.train.optimizer, recipe.data.test_fraction) == (
        40, "sgd", 0.2)
    plain = api.base_config("alexnet")  # no recipe: the defaults, at its own input size
    assert plain.name == "cnnkeras-train" and plain.data.image_size is None


def test_the_lecture_cnn_and_resnet18_named_alone_train_at_batch_128_and_others_at_32():
    import experiments
    from cnnkeras.cli import api

    lecture = api.base_config("lecture_cnn")
    assert (lecture.train.batch_size, lecture.train.learning_rate) == (128, 4e-3)
    assert lecture.train.epochs == experiments.get("lecture_digits").train.epochs
    resnet18 = api.base_config("resnet18").train
    assert (resnet18.batch_size, resnet18.learning_rate, resnet18.lr_schedule) == (
        128, 4e-3, "cosine")
    resnet34 = api.base_config("resnet34").train
    assert (resnet34.batch_size, resnet34.lr_schedule) == (32, "constant")
    assert experiments.get("lecture_digits").train.batch_size == 32  # make tune's trials
    overridden = api.resolve(lecture, ["train.batch_size=64"])
    assert overridden.train.batch_size == 64  # a user's setting still wins
