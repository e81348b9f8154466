"""Search spaces: functions ``(hp, base_config) -> ExperimentConfig``.

A space names every hyperparameter after what it sets (``filters_1``,
``kernel_size_1``, ``strides_1``, ``padding_1``, ...), so the same names are
the KerasTuner hyperparameters, the MLflow params and the columns of MLflow's
compare view. Spaces build configs only; the builders in ``cnnkeras`` check
the geometry and build the layers.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from cnnkeras.config import ExperimentConfig
from cnnkeras.registry import Registry

Space = Callable[..., ExperimentConfig]
SPACES: Registry[Space] = Registry("search space")


def training_knobs(hp, base: ExperimentConfig) -> ExperimentConfig:
    """Learning rate and optimizer, shared by every space."""
    train = dataclasses.replace(
        base.train,
        learning_rate=hp.Choice("learning_rate", [3e-4, 1e-3, 3e-3]),
        optimizer=hp.Choice("optimizer", ["adam", "sgd", "rmsprop"]),
    )
    return dataclasses.replace(base, train=train)


def with_options(base: ExperimentConfig, architecture: str, **options) -> ExperimentConfig:
    model = dataclasses.replace(base.model, architecture=architecture, options=options)
    return dataclasses.replace(base, model=model)


@SPACES.register("lecture_cnn")
def lecture_cnn(hp, base: ExperimentConfig) -> ExperimentConfig:
    """Filters, kernel size, stride and padding of both conv blocks, plus the head and knobs."""
    blocks = range(1, 3)
    config = with_options(
        base, "lecture_cnn",
        filters=tuple(hp.Choice(f"filters_{i}", [16, 25, 32, 50, 64]) for i in blocks),
        kernel_sizes=tuple(hp.Choice(f"kernel_size_{i}", [3, 5, 7]) for i in blocks),
        strides=tuple(hp.Choice(f"strides_{i}", [1, 2]) for i in blocks),
        paddings=tuple(hp.Choice(f"padding_{i}", ["valid", "same"]) for i in blocks),
        dense_units=hp.Choice("dense_units", [64, 100, 128]),
        dropout=hp.Choice("dropout", [0.0, 0.25, 0.5]),
        batch_norm=hp.Boolean("batch_norm"),
    )
    return training_knobs(hp, config)


@SPACES.register("training")
def training(hp, base: ExperimentConfig) -> ExperimentConfig:
    """Any architecture as configured (``model.architecture``, its options): lr and optimizer."""
    return training_knobs(hp, base)


def architecture_of(space: Space, base: ExperimentConfig) -> str:
    """The architecture ``space`` builds from ``base`` (at its default hyperparameters)."""
    import keras_tuner as kt

    return space(kt.HyperParameters(), base).model.architecture


# each module registers its families' spaces: the classics, the tf.nn conv variants
from tuning import classic, nn_variants  # noqa: E402,F401
