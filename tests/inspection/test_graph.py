"""Models nested in models: the layer table, filters and feature maps reach inside them.

The tiny model here nests a Sequential (``pre``) and a functional model (``base``) the
way a transfer model nests its Inception v3 base, so every number can be worked out by
hand.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnkeras.inspection import viz
from cnnkeras.inspection.analysis import layer_table, memory_report
from cnnkeras.inspection.graph import find_layer, layer_probe


@pytest.fixture(scope="module")
def nested():
    """image 8x8x2 -> pre (Sequential: scale) -> base (conv 3@3x3/2, conv_b 4@3x3) -> head."""
    keras.utils.set_random_seed(0)
    base_input = keras.Input((8, 8, 2), name="base_image")
    x = keras.layers.Conv2D(3, 3, strides=2, name="conv")(base_input)
    base = keras.Model(base_input, keras.layers.Conv2D(4, 3, name="conv_b")(x), name="base")
    pre = keras.Sequential([keras.layers.Rescaling(2.0, name="scale")], name="pre")
    inputs = keras.Input((8, 8, 2), name="image")
    outputs = keras.layers.Conv2D(5, 1, name="head")(base(pre(inputs)))
    return keras.Model(inputs, outputs, name="outer")


def test_the_table_has_a_row_per_nested_layer_and_follows_the_field_through(nested):
    rows = layer_table(nested)
    assert [(r.name, r.output_shape, r.params, r.receptive_field, r.jump) for r in rows] == [
        ("image", (8, 8, 2), 0, (1, 1), (1, 1)),
        ("pre/scale", (8, 8, 2), 0, (1, 1), (1, 1)),
        ("base/conv", (3, 3, 3), 3 * 3 * 2 * 3 + 3, (3, 3), (2, 2)),
        ("base/conv_b", (1, 1, 4), 3 * 3 * 3 * 4 + 4, (7, 7), (2, 2)),  # 3 + (3 - 1) * 2
        ("head", (1, 1, 5), 4 * 5 + 5, (7, 7), (2, 2)),
    ]
    assert sum(r.params for r in rows) == nested.count_params() == 194
    assert rows[2].flops == 2 * 9 * 54  # 3x3 positions x a 3x3x2x3 kernel
    assert memory_report(nested).input_values == 8 * 8 * 2  # the base's input is not counted


def test_layers_are_found_by_path_or_by_a_unique_bare_name(nested):
    assert find_layer(nested, "base/conv_b")[0] == "base/conv_b"
    path, layer = find_layer(nested, "conv")
    assert path == "base/conv" and layer is nested.get_layer("base").get_layer("conv")
    with pytest.raises(ValueError, match="has no layer 'nope'. Its layers: image, pre, base, "
                                         "head. Layers of nested models are named by path"):
        find_layer(nested, "nope")


def test_first_conv_and_default_feature_layers_look_inside(nested):
    assert viz.first_conv(nested)[0] == "base/conv"
    assert viz.first_conv_layer(nested).name == "conv"
    assert viz.default_feature_layers(nested) == ["base/conv", "base/conv_b", "head"]


def test_a_nested_layers_feature_maps_are_its_output_on_the_outer_input(nested):
    image = np.random.default_rng(0).random((8, 8, 2)).astype("float32")  # synthetic
    [maps] = viz.feature_maps(nested, image, ["base/conv"], input_range=(0, 255))
    pixels = viz.model_input(nested, image, (0, 255))[None]
    np.testing.assert_allclose(pixels.max(), 255 * image.max(), rtol=1e-2)
    base = nested.get_layer("base")
    kernel, bias = base.get_layer("conv").get_weights()
    scaled = 2.0 * pixels[0]
    expected = np.stack([[np.tensordot(scaled[2 * i:2 * i + 3, 2 * j:2 * j + 3], kernel, 3)
                          for j in range(3)] for i in range(3)]) + bias  # NumPy convolution
    assert maps.shape == (3, 3, 3)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-3)
    probe = layer_probe(nested, "base/conv_b")
    assert tuple(probe(pixels, training=False).shape) == (1, 1, 1, 4)
