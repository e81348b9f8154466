"""Search spaces: functions ``(hp, base_config) -> ExperimentConfig``.

A space sets only what it varies, on top of the configured ``model.options``
(``with_options``), so ``--set model.options.pool_size=3`` reaches every trial.
A space names every hyperparameter after what it sets (``filters_1``,
``kernel_size_1``, ``strides_1``, ``padding_1``, ...), so the same names are
the KerasTuner hyperparameters, the MLflow params and the columns of MLflow's
compare view. Spaces build configs only; the builders in ``cnnkeras`` check
the geometry and build the layers.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from cnnkeras.config import ExperimentConfig, ModelConfig
from cnnkeras.registry import Registry

Space = Callable[..., ExperimentConfig]
# space -> the module that registers it, imported when the space is first asked for
SPACES: Registry[Space] = Registry("search space", index={
    **dict.fromkeys(("lecture_cnn", "training"), "tuning.spaces"),
    **dict.fromkeys(("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "alexnet",
                     "zfnet", "googlenet", "lenet5_modern", "lenet5", "inception_v3"),
                    "tuning.classic"),
    **dict.fromkeys(("conv1d_sequence", "conv3d_volume", "atrous_segmenter",
                     "transpose_decoder", "separable_cnn"), "tuning.nn_variants"),
})


def training_knobs(hp, base: ExperimentConfig, *, learning_rates=(3e-4, 1e-3, 3e-3),
                   optimizers=("adam", "sgd", "rmsprop")) -> ExperimentConfig:
    """Learning rate and optimizer, shared by every space."""
    train = dataclasses.replace(
        base.train,
        learning_rate=hp.Choice("learning_rate", list(learning_rates)),
        optimizer=hp.Choice("optimizer", list(optimizers)),
    )
    return dataclasses.replace(base, train=train)


def with_options(base: ExperimentConfig, architecture: str, **options) -> ExperimentConfig:
    """``architecture`` with the configured options, and the space's ``options`` on top.

    Options the user configured for another architecture do not apply and are dropped.
    """
    configured = base.model.options if base.model.architecture == architecture else {}
    model = dataclasses.replace(base.model, architecture=architecture,
                                options={**configured, **options})
    return dataclasses.replace(base, model=model)


def overridden_options(space: Space, base: ExperimentConfig) -> dict:
    """The configured ``model.options`` that ``space`` varies, so no trial uses them."""
    import keras_tuner as kt

    bare = dataclasses.replace(base, model=dataclasses.replace(base.model, options={}))
    varied = space(kt.HyperParameters(), bare).model.options
    return {key: value for key, value in base.model.options.items() if key in varied}


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
    # A lecture CNN trains for a few hundred steps, too few for plain SGD or a rate of 3e-4:
    # of the former `make tune` default's 10 trials, the six with either scored a median 0.78
    # validation accuracy (SGD: 0.19), the four others 0.96. No trial is spent on them.
    return training_knobs(hp, config, learning_rates=(1e-3, 3e-3),
                          optimizers=("adam", "rmsprop"))


@SPACES.register("training")
def training(hp, base: ExperimentConfig) -> ExperimentConfig:
    """Any architecture as configured (``model.architecture``, its options): lr and optimizer."""
    return training_knobs(hp, base)


def architecture_of(space: Space, base: ExperimentConfig) -> str:
    """The architecture ``space`` builds from ``base`` (at its default hyperparameters)."""
    import keras_tuner as kt

    return space(kt.HyperParameters(), base).model.architecture


def search_config(space: Space, config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with the space's architecture and the configured options under today's names.

    The options are checked against the builder before the search starts (an unknown
    name raises, an old one is renamed with a warning), so every trial merges the
    space's options into names it can override. A warning line lists options no
    trial uses.
    """
    from cnnkeras.architectures.options import resolve_options  # loads the builders

    architecture = architecture_of(space, config)
    if architecture != config.model.architecture:  # e.g. --set tune.space=resnet18
        if config.model.options:
            print(f"Warning: model.options {dict(config.model.options)} are for "
                  f"{config.model.architecture}; space {config.tune.space} builds "
                  f"{architecture}, so no trial uses them.")
        return dataclasses.replace(config, model=ModelConfig(architecture))
    options = resolve_options(architecture, config.model.options)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, options=options))
    overridden = overridden_options(space, config)
    if overridden:
        settings = ", ".join(f"model.options.{k}={v!r}" for k, v in overridden.items())
        print(f"Warning: search space {config.tune.space} varies {', '.join(overridden)}, "
              f"so the configured {settings} is not used by any trial.")
    return config
