"""`cnnkeras.train` and `cnnkeras.tune`: the command line's jobs as Python calls.

For notebooks: the same named experiments, the same ``section.key=value``
overrides and the same MLflow runs as ``cnnkeras train`` and ``cnnkeras tune``::

    result = cnnkeras.train("lecture_cnn", dataset="digits", epochs=3)
    result.run_id, result.test_metrics, result.model

    search = cnnkeras.tune("lecture_digits", max_trials=4, overrides=["train.epochs=2"])
    search.winner.registered            # "models:/lecture_digits/3"
    model = cnnkeras.load_model(search.winner.registered)

They live beside the command line because they wire the library to the named
experiments and the tuning package, which the library itself never imports.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

# keyword -> the config key it sets, for both calls
KEYS = {"dataset": "data.dataset", "data_dir": "data.data_dir", "epochs": "train.epochs",
        "batch_size": "train.batch_size", "strategy": "runtime.strategy",
        "precision": "runtime.precision", "tuner": "tune.tuner",
        "max_trials": "tune.max_trials"}


def resolve(config, overrides: Sequence[str] = (), **settings):
    """``config`` with ``settings`` (keywords of ``KEYS``) then ``overrides`` applied, and
    its model options checked against the builder before anything runs."""
    from cnnkeras.architectures.options import resolve_options
    from cnnkeras.config import apply_overrides

    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)}. Valid: {', '.join(KEYS)}, "
                         "or overrides=['section.key=value', ...].")
    pairs = [f"{KEYS[key]}={value}" for key, value in settings.items() if value is not None]
    config = apply_overrides(config, pairs + list(overrides))
    options = resolve_options(config.model.architecture, config.model.options)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, options=options))


def start_runtime(config):
    """Precision and strategy, created once here at the entry point."""
    from cnnkeras import distribute

    distribute.set_precision(config.runtime.precision)
    return distribute.create_strategy(config.runtime.strategy,
                                      cpu_devices=config.runtime.cpu_devices)


def base_config(name: Optional[str]):
    """A named experiment; an architecture's recipe (``experiments.RECIPES``: LeNet-5 trains as
    in the paper); or a registered architecture with the defaults (its own training knobs from
    ``experiments.TRAINING``, if any) and its own input size."""
    import experiments
    from cnnkeras.config import ModelConfig

    if name is None or name in experiments.names():
        return experiments.get(name or experiments.DEFAULT)
    if name in experiments.RECIPES:
        return experiments.get(experiments.RECIPES[name])
    base = experiments.get(experiments.DEFAULT)
    return dataclasses.replace(base, name="cnnkeras-train", model=ModelConfig(name),
                               data=dataclasses.replace(base.data, image_size=None,
                                                        channels=None),
                               train=experiments.own_training(name, base.train))


def train(name: Optional[str] = None, *, overrides: Sequence[str] = (), register: bool = False,
          **settings):
    """Train a named experiment or a registered architecture; a ``TrainResult`` (model,
    history, test metrics, MLflow run id, logged model URI, registered version if asked)."""
    from cnnkeras.training import register as register_model
    from cnnkeras.training import train_experiment

    config = resolve(base_config(name), overrides, **settings)
    result = train_experiment(config, start_runtime(config))
    if register and result.run_id:
        result = register_model(result, config.mlflow_experiment)
    return result


def tune(name: Optional[str] = None, *, overrides: Sequence[str] = (), **settings):
    """Search a named experiment's space; a ``SearchResult`` (parent run id, per-trial
    summary, and the winner: its test metrics and registered ``models:/NAME/VERSION``)."""
    import experiments

    config = resolve(experiments.get(name or experiments.DEFAULT), overrides, **settings)
    from tuning.search import run_search  # TensorFlow loads after the config is checked

    return run_search(config, start_runtime(config))
