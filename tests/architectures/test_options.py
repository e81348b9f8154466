"""Builder options: one name per concept in every family, the last release's names for one more
release, and every name checked against the builder before anything is built."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import cnnkeras
from cnnkeras.architectures.options import RENAMED, option_names, resolve_options
from cnnkeras.registry import ARCHITECTURES

# renamed option -> (a value that is not its default, what the model shows for it)
PROBES = {
    "dense_units": (7, lambda model: [layer.units for layer in model.layers
                                      if isinstance(layer, keras.layers.Dense)
                                      and layer.name != "predictions"]),
    "dilation_rates": (2, lambda model: np.ravel(model.get_layer("block1_conv").dilation_rate)),
}
OLD_VALUES = {"fc_units": 8, "rates": (1, 2)}


def build(name, **options):
    return cnnkeras.build(name, input_shape=ARCHITECTURES.metadata(name)["small_input_shape"],
                          num_classes=3, **options)


def layout(model) -> tuple:
    """What two builds must share to be the same model: layers, their outputs, weights."""
    return (model.count_params(),
            [(layer.name, tuple(layer.output.shape)) for layer in model.layers],
            [tuple(weight.shape) for weight in model.weights])


def renamed_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught
            if issubclass(w.category, UserWarning) and "is renamed" in str(w.message)]


NEW_NAME_USES = [(name, new) for name in cnnkeras.list_architectures()
                 for new in PROBES if new in option_names(name)]
OLD_NAME_USES = [(name, old) for old, (_, names) in RENAMED.items() for name in names]


def test_every_renamed_option_is_probed_and_taken_where_its_old_name_was():
    assert {new for new, _ in RENAMED.values()} == set(PROBES)
    assert all((name, RENAMED[old][0]) in NEW_NAME_USES for name, old in OLD_NAME_USES)
    assert len(NEW_NAME_USES) == 8  # dense_units in 5 families, dilation_rates in 3


@pytest.mark.parametrize("name", cnnkeras.list_architectures())
def test_no_builder_takes_an_old_name(name):
    assert not set(option_names(name)) & set(RENAMED)


@pytest.mark.parametrize("name,option", NEW_NAME_USES)
def test_a_renamed_option_works_under_its_new_name_in_every_family(name, option):
    value, probe = PROBES[option]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build(name, **{option: value})
    assert set(probe(model)) == {value}
    assert renamed_warnings(caught) == []


@pytest.mark.parametrize("name,old", OLD_NAME_USES)
def test_an_old_name_warns_once_and_builds_the_same_model(name, old):
    new, value = RENAMED[old][0], OLD_VALUES[old]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = build(name, **{old: value})
    assert renamed_warnings(caught) == [
        f"`{old}` is renamed `{new}`; the old name is accepted until the next release."]
    assert layout(before) == layout(build(name, **{new: value}))


def test_resolving_an_old_name_records_the_new_one():
    with pytest.warns(UserWarning, match="`fc_units` is renamed `dense_units`"):
        options = resolve_options("alexnet", {"fc_units": 8, "dropout": 0.0})
    assert options == {"dense_units": 8, "dropout": 0.0}


@pytest.mark.parametrize("name,old", OLD_NAME_USES)
def test_the_old_and_the_new_name_together_is_one_line_of_error(name, old):
    new, value = RENAMED[old][0], OLD_VALUES[old]
    with pytest.raises(ValueError) as raised:
        build(name, **{old: value, new: value})
    message = str(raised.value)
    assert "\n" not in message and f"{old} is the old name of {new}" in message


@pytest.mark.parametrize("name,option,valid", [
    ("zfnet", "fc_unit", "dense_units, dropout, lrn"),
    ("lecture_cnn", "fc_units", "filters, kernel_sizes, strides, paddings, pool_size, "
                                "dense_units, dropout, batch_norm"),  # never lecture_cnn's
    ("transpose_decoder", "rates", "filters, kernel_sizes, strides, paddings, "
                                   "bottleneck_convs, batch_norm"),
])
def test_an_unknown_name_fails_before_building_listing_the_valid_ones(name, option, valid):
    expected = f"{name} has no option(s) {option}. Valid options: {valid}."
    with pytest.raises(ValueError) as raised:
        resolve_options(name, {option: 8})
    assert str(raised.value) == expected
    with pytest.raises(ValueError) as raised:
        build(name, **{option: 8})
    assert str(raised.value) == expected
