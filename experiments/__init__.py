"""Named experiments: complete, frozen configs that `cnnkeras train/tune NAME` run.

A family of experiments lives in its own module here and registers each config
with ``register``; importing this package registers them all.
"""

from __future__ import annotations

from cnnkeras.config import ExperimentConfig
from cnnkeras.registry import Registry

EXPERIMENTS: Registry[ExperimentConfig] = Registry("experiment")
DEFAULT = "lecture_digits"


def register(config: ExperimentConfig) -> ExperimentConfig:
    EXPERIMENTS.add(config.name, config)
    return config


def get(name: str) -> ExperimentConfig:
    return EXPERIMENTS.get(name)


def names() -> list[str]:
    return EXPERIMENTS.names()


# The experiment whose recipe `cnnkeras train ARCHITECTURE` uses when the architecture is
# named alone: the papers' networks train as their papers did. Others start from DEFAULT
# with the architecture's own input size.
RECIPES = {"lenet5": "lenet5_mnist", "lenet5_modern": "lenet5_modern_mnist"}


# Importing a family module registers its experiments.
from experiments import lecture, lenet, nn_variants, transfer  # noqa: E402,F401
