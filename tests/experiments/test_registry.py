"""Every registered experiment resolves: its model builds at the input shape and number of
classes it would train with, and its search space draws a trial of the same architecture.

No data is loaded: the class counts of the base datasets are written here (tf_flowers has
five kinds of flower), and ``moving:``/``segmentation:`` change the shape and classes as
``cnnkeras.data.derived`` does.
"""

from __future__ import annotations

import keras_tuner as kt
import pytest

import experiments
from cnnkeras import training
from cnnkeras.config import apply_overrides
from cnnkeras.data.derived import FRAMES
from tuning.spaces import SPACES

BASE_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "tf_flowers": 5}


def offline(config):
    """``config`` with ImageNet weights (not downloadable here) as random ones: same model."""
    if config.model.options.get("weights") != "imagenet":
        return config
    return apply_overrides(config, ["model.options.weights=none"])


def shape_and_classes(config) -> tuple:
    """(model input shape, number of classes) that ``cnnkeras train`` would build with."""
    kind, _, base = config.data.dataset.partition(":")
    shape = training.model_input_shape(config)
    if kind == "moving":
        return (FRAMES, *shape), BASE_CLASSES[base]
    if kind == "segmentation":
        return shape, BASE_CLASSES[base] + 1  # class 0 is the background
    return shape, BASE_CLASSES[kind]


@pytest.mark.parametrize("name", experiments.names())
def test_experiment_builds_its_model_at_its_input_shape_and_classes(name):
    config = offline(experiments.get(name))
    assert config.name == name
    shape, classes = shape_and_classes(config)
    model = training.build_model(config, shape, classes)
    assert tuple(model.input_shape[1:]) == shape
    assert model.output_shape[-1] == classes
    assert model.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("name", experiments.names())
def test_experiment_search_space_draws_a_trial_that_builds(name):
    config = offline(experiments.get(name))
    hp = kt.HyperParameters()
    trial = SPACES.get(config.tune.space)(hp, config)
    assert trial.model.architecture == config.model.architecture
    assert hp.values, f"space {config.tune.space!r} varies nothing"
    shape, classes = shape_and_classes(trial)
    assert training.build_model(trial, shape, classes).output_shape[-1] == classes


@pytest.mark.parametrize("name", [  # Inception v3 at 299x299 costs seconds: with -m slow
    name if name != "transfer_flowers" else pytest.param(name, marks=pytest.mark.slow)
    for name in experiments.names()])
def test_experiment_trains_one_step_of_two_images(name):
    """One optimizer step on a batch of two random images at the experiment's input: its
    model, loss and optimizer fit together (a smoke test of wiring, not of learning)."""
    import numpy as np

    config = offline(experiments.get(name))
    shape, classes = shape_and_classes(config)
    model = training.build_model(config, shape, classes)
    rng = np.random.default_rng(0)
    images = rng.random((2, *shape), dtype=np.float32)
    labels = rng.integers(0, classes, (2, *model.output_shape[1:-1]))
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(images, labels, return_dict=True)["loss"]
    assert np.isfinite(loss)
    after = [w.numpy() for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
