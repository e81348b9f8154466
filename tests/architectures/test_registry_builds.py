"""Every registered architecture: builds small with unique layer names (all, the heavy ones
too), trains one step (the heavy ones with ``-m slow``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cnnkeras
from cnnkeras.registry import ARCHITECTURES

# one eager train step of these takes more than a few seconds on two CPU cores
HEAVY = {"inception_v3", "resnet101", "resnet152"}


def architecture_params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name
            for name in cnnkeras.list_architectures()]


def small_shape(name):
    return tuple(ARCHITECTURES.metadata(name)["small_input_shape"])


@pytest.mark.parametrize("name", cnnkeras.list_architectures())
def test_builds_at_its_small_input_shape_with_unique_layer_names(name):
    shape = small_shape(name)
    model = cnnkeras.build(name, input_shape=shape, num_classes=3)
    assert tuple(model.input_shape[1:]) == shape and model.output_shape[-1] == 3
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)), "layer names must be unique"


@pytest.mark.parametrize("name", architecture_params())
def test_takes_one_finite_train_step_at_its_small_input_shape(name):
    keras.utils.set_random_seed(0)
    shape = small_shape(name)
    model = cnnkeras.build(name, input_shape=shape, num_classes=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(0)
    x = (rng.random((2,) + shape) * 255).astype("float32")  # pixels in [0, 255]
    y = rng.integers(0, 3, (2,) + tuple(model.output_shape[1:-1]))
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert any(changed), "one SGD step must move some weight"


@pytest.mark.parametrize("name", cnnkeras.list_architectures())
def test_default_input_shape_is_at_least_the_small_one(name):
    paper, small = cnnkeras.default_input_shape(name), small_shape(name)
    assert len(paper) == len(small)
    assert all(p >= s for p, s in zip(paper, small, strict=True))
