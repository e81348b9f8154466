"""Named experiments: complete, frozen configs that `cnnkeras train/tune NAME` run.

A family of experiments lives in its own module here and registers each config
with ``register``; importing this package registers them all.
"""

from __future__ import annotations

import dataclasses

from cnnkeras.config import ExperimentConfig, TrainConfig
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

# DEFAULT's training knobs that an architecture named alone trains with instead. lecture_cnn
# at 28x28: batch 128 with Adam 4e-3 trained 1.85x the images/s of batch 32 (MNIST 8,000,
# AMD EPYC Zen 4 with oneDNN; 2.4x without oneDNN, 1.7x on a Zen 3 with Adam 2e-3) and tested
# as well after the same epochs (0.976-0.986 against 0.969-0.982); its small steps leave a
# core idle at 32. resnet18 at 32x32x3 (2,000 MNIST images, 3 epochs, Zen 4 with oneDNN):
# batch 128 with DEFAULT's constant Adam 2e-3 tested at 0.900-0.921 against plain Keras'
# 0.936 at 32; a cosine decay from 4e-3 tested at 0.930-0.943 over three seeds (2e-3:
# 0.924-0.940; 8e-3: 0.845-0.881) and trained 1.84x the images/s of plain Keras in one
# train_speed run. That needs its batch normalization at momentum 0.9 (at Keras' 0.99 it
# tested at 0.15). At 224x224 a batch of 128 peaks at 4.8 GB of memory (1.9 GB at 32).
TRAINING = {"lecture_cnn": {"batch_size": 128, "learning_rate": 4e-3},
            "resnet18": {"batch_size": 128, "learning_rate": 4e-3, "lr_schedule": "cosine"}}


def own_training(architecture: str, train: TrainConfig) -> TrainConfig:
    """``train`` with ``architecture``'s own knobs from ``TRAINING`` on top, if it has any."""
    return dataclasses.replace(train, **TRAINING.get(architecture, {}))


# Importing a family module registers its experiments.
from experiments import lecture, lenet, nn_variants, transfer  # noqa: E402,F401
