"""Search spaces: every registered space yields a config its builder accepts, names match,
the configured options stay under what a space varies."""

import inspect

import keras_tuner as kt
import pytest

import cnnkeras
import experiments
from cnnkeras.config import apply_overrides
from cnnkeras.registry import ARCHITECTURES
from tuning.spaces import SPACES, architecture_of, overridden_options

BASE = experiments.get("lecture_digits")


def keyword_options(architecture):
    cnnkeras.list_architectures()  # registers the builders
    parameters = inspect.signature(ARCHITECTURES.get(architecture)).parameters.values()
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("name", SPACES.names())
def test_every_space_builds_a_config_its_builder_accepts(name):
    hp = kt.HyperParameters()
    config = SPACES.get(name)(hp, BASE)
    assert config.model.architecture in cnnkeras.list_architectures()
    assert set(config.model.options) <= keyword_options(config.model.architecture)
    assert {"learning_rate", "optimizer"} <= {p.name for p in hp.space}
    assert config.train.optimizer == hp.values["optimizer"]


def test_lecture_space_names_each_block_setting_after_what_it_sets():
    hp = kt.HyperParameters()
    SPACES.get("lecture_cnn")(hp, BASE)
    assert [p.name for p in hp.space] == [
        "filters_1", "filters_2", "kernel_size_1", "kernel_size_2", "strides_1", "strides_2",
        "padding_1", "padding_2", "dense_units", "dropout", "batch_norm", "learning_rate",
        "optimizer"]


def test_the_lecture_space_spends_no_trial_on_sgd_or_a_rate_too_small_for_a_short_run():
    hp = kt.HyperParameters()
    SPACES.get("lecture_cnn")(hp, BASE)
    values = {p.name: p.values for p in hp.space}
    assert values["learning_rate"] == [1e-3, 3e-3]
    assert values["optimizer"] == ["adam", "rmsprop"]
    other = kt.HyperParameters()
    SPACES.get("training")(other, BASE)  # the other spaces keep the wider knobs
    assert {p.name: p.values for p in other.space}["optimizer"] == ["adam", "sgd", "rmsprop"]


def test_lecture_space_turns_chosen_values_into_builder_options():
    hp = kt.HyperParameters()
    SPACES.get("lecture_cnn")(hp, BASE)
    hp.values.update(filters_1=32, filters_2=64, kernel_size_2=5, strides_1=2, padding_2="same",
                     dropout=0.25, batch_norm=True, learning_rate=3e-3, optimizer="sgd")
    config = SPACES.get("lecture_cnn")(hp, BASE)
    options = dict(config.model.options)
    assert options["filters"] == (32, 64)
    assert options["kernel_sizes"] == (3, 5)
    assert options["strides"] == (2, 1)
    assert options["paddings"] == ("valid", "same")
    assert (options["dropout"], options["batch_norm"]) == (0.25, True)
    assert (config.train.learning_rate, config.train.optimizer) == (3e-3, "sgd")
    assert config.data == BASE.data  # a space leaves the data alone


@pytest.mark.parametrize("variant", ["resnet18", "resnet50"])
def test_resnet_space_varies_each_stage_and_defaults_to_the_papers_strides(variant):
    hp = kt.HyperParameters()
    options = dict(SPACES.get(variant)(hp, BASE).model.options)
    names = {p.name for p in hp.space}
    assert {f"{k}_{i}" for k in ("filters", "kernel_size", "strides") for i in range(1, 5)} <= names
    assert options["strides"] == (1, 2, 2, 2)
    assert options["filters"] == (16, 32, 64, 128)  # the smallest widths come first


def test_a_space_decides_the_architecture_and_training_keeps_the_configured_one():
    assert architecture_of(SPACES.get("resnet34"), BASE) == "resnet34"
    assert architecture_of(SPACES.get("training"), BASE) == BASE.model.architecture


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(ValueError, match="lecture_cnn"):
        SPACES.get("no_such_space")


def test_a_space_sets_what_it_varies_on_top_of_the_configured_options():
    base = apply_overrides(BASE, ["model.options.pool_size=3", "model.options.dropout=0.5"])
    options = dict(SPACES.get("lecture_cnn")(kt.HyperParameters(), base).model.options)
    assert options["pool_size"] == 3  # not varied: the user's value reaches the trial
    assert options["dropout"] == 0.0  # varied: the space's value (its default here)
    assert overridden_options(SPACES.get("lecture_cnn"), base) == {"dropout": 0.5}
    assert overridden_options(SPACES.get("training"), base) == {}


def test_options_configured_for_another_architecture_do_not_reach_a_space():
    base = apply_overrides(BASE, ["model.options.pool_size=3"])
    options = dict(SPACES.get("resnet18")(kt.HyperParameters(), base).model.options)
    assert "pool_size" not in options and options["strides"] == (1, 2, 2, 2)


def test_a_search_renames_configured_old_options_before_a_space_merges_its_own():
    from tuning.spaces import search_config

    base = apply_overrides(BASE, ["model.architecture=alexnet", "tune.space=alexnet",
                                  "model.options.fc_units=512", "model.options.groups=2"])
    with pytest.warns(UserWarning, match="`fc_units` is renamed `dense_units`"):
        config = search_config(SPACES.get("alexnet"), base)
    assert dict(config.model.options) == {"groups": 2, "dense_units": 512}
    options = dict(SPACES.get("alexnet")(kt.HyperParameters(), config).model.options)
    assert (options["groups"], options["dense_units"]) == (2, 256)
    assert "fc_units" not in options


def test_a_search_with_an_unknown_option_fails_before_it_starts():
    from tuning.spaces import search_config

    base = apply_overrides(BASE, ["model.options.nonsense=1"])
    with pytest.raises(ValueError, match=r"lecture_cnn has no option\(s\) nonsense\. Valid"):
        search_config(SPACES.get("lecture_cnn"), base)
