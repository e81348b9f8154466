import dataclasses

import pytest

from cnnkeras.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    flatten,
    to_json,
)

BASE = ExperimentConfig(name="t")


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        BASE.train.epochs = 3
    with pytest.raises(TypeError):
        BASE.model.options["filters"] = 3


def test_overrides_are_parsed_by_type_and_leave_the_original_alone():
    config = apply_overrides(BASE, [
        "train.epochs=3", "train.learning_rate=0.01", "data.image_size=32x32",
        "data.limit=none", "tune.overwrite=true", "model.options.filters=(32, 64)",
        "model.options.paddings=same", "model.options.batch_norm=false",
        "model.options.augment=True",
    ])
    assert config.train.epochs == 3 and isinstance(config.train.epochs, int)
    assert config.train.learning_rate == 0.01
    assert config.data.image_size == (32, 32)
    assert config.data.limit is None
    assert config.tune.overwrite is True
    assert dict(config.model.options) == {"filters": (32, 64), "paddings": "same",
                                          "batch_norm": False, "augment": True}
    assert BASE.train.epochs == TrainConfig().epochs


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", r"Unknown config key 'train.epoch'. Valid keys in train: train.epochs"),
    ("trian.epochs=3", r"section one of data, model, train, tune, runtime"),
    ("train.epochs", r"section.key=value"),
    ("train.epochs=three", r"Cannot set train.epochs='three'"),
    ("train.optimizer=adagrad", r"train.optimizer must be one of adam, sgd"),
    ("tune.tuner=genetic", r"tune.tuner must be one of random, bayesian, hyperband, grid"),
    ("train.lr_schedule=step", r"train.lr_schedule must be one of constant, cosine"),
    ("data.channels=2", r"data.channels must be 1, 3 or None"),
])
def test_bad_overrides_say_what_is_valid(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(BASE, [override])


def test_cross_field_checks():
    with pytest.raises(ValueError, match="must leave some training data"):
        DataConfig(validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="train.epochs must be positive"):
        TrainConfig(epochs=0)


def test_flatten_names_every_field():
    flat = flatten(dataclasses.replace(BASE, model=ModelConfig("lecture_cnn", {"filters": (8,)})))
    assert flat["train.epochs"] == TrainConfig().epochs
    assert flat["model.options.filters"] == (8,)
    assert flat["runtime.strategy"] == "auto"
    assert '"architecture": "lecture_cnn"' in to_json(BASE)
