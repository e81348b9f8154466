"""The one model contract: every registered architecture takes pixels in [0, 255] and scales
them itself, in a ``pixels`` Rescaling(1/255) right after its input."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cnnkeras
from cnnkeras.architectures.blocks import PIXELS
from cnnkeras.inspection.graph import read_graph
from cnnkeras.registry import ARCHITECTURES

# a forward pass of these at their small shape takes several seconds on two CPU cores; the
# deeper ResNets and GoogLeNet take their input through the same `image_input` as resnet18
# and the others, so the fast suite checks that once per builder family
HEAVY = {"inception_v3", "resnet101", "resnet152"}
DEEPER = {"resnet50", "resnet101", "resnet152"}
FORMS = [(name, {}) for name in cnnkeras.list_architectures()] + [
    ("inception_v3", {"frozen_base": True}),
    ("inception_v3", {"frozen_base": True, "augment": True}),
]


def forms(*, slow: set = frozenset()):
    """Every form as a test parameter; those named in ``slow`` marked slow."""
    return [pytest.param(name, options, marks=[pytest.mark.slow] if name in slow else [],
                         id="-".join([name, *options])) for name, options in FORMS]


def built(name: str, options: dict) -> keras.Model:
    keras.utils.set_random_seed(0)
    shape = tuple(ARCHITECTURES.metadata(name)["small_input_shape"])
    return cnnkeras.build(name, input_shape=shape, num_classes=3, **options)


def after_pixels(model: keras.Model) -> keras.Model:
    """The layers after ``pixels``: the model as it was when the pipeline scaled to [0, 1]."""
    return keras.Model(model.get_layer(PIXELS).output, model.outputs)


@pytest.mark.parametrize("name, options", forms(slow=DEEPER))
def test_pixels_rescales_by_1_255_right_after_the_input_and_alone_reads_it(name, options):
    model = built(name, options)
    first, pixels = model.layers[:2]
    assert isinstance(first, keras.layers.InputLayer)
    assert type(pixels) is keras.layers.Rescaling and pixels.name == PIXELS
    assert pixels.scale == pytest.approx(1 / 255) and pixels.offset == 0
    assert pixels.count_params() == 0 and pixels.dtype_policy.compute_dtype == "float32"
    sources = read_graph(model).sources
    readers = [layer for layer, inputs in sources.items() if (first.name, 0) in inputs]
    assert readers == [PIXELS]


@pytest.mark.parametrize("name, options",
                         forms(slow=HEAVY | DEEPER | {"resnet34", "googlenet"}))
def test_predict_on_0_255_equals_the_old_model_on_0_1(name, options):
    model = built(name, options)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, *model.input_shape[1:])).astype("float32") / 255
    np.testing.assert_allclose(model.predict(x * 255, verbose=0),
                               after_pixels(model).predict(x, verbose=0), rtol=1e-4, atol=1e-6)


def test_a_saved_model_reloads_in_safe_mode_with_its_pixels_layer(tmp_path):
    model = built("lecture_cnn", {})
    model.save(tmp_path / "lecture.keras")
    loaded = keras.saving.load_model(tmp_path / "lecture.keras")  # safe_mode=True by default
    assert isinstance(loaded.get_layer(PIXELS), keras.layers.Rescaling)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in loaded.layers)
    x = np.random.default_rng(1).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
