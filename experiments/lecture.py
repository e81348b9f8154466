"""The lecture CNN on the embedded digits (the `make tune` default), MNIST and flowers."""

from cnnkeras.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    TuneConfig,
)
from experiments import register

register(ExperimentConfig(
    name="lecture_digits",
    description="Lecture CNN on scikit-learn's 1,797 real 8x8 digits resized to 16x16; "
                "works offline, searches in about a minute on two CPU cores.",
    # 16x16 holds all an 8x8 digit has and costs a third of 28x28. 8 trials of 8 epochs find
    # 0.989-1.0 validation accuracy (3 seeds) in about a minute on two cores, where 12 trials
    # of 6 epochs at 28x28 found 0.967
    data=DataConfig(dataset="digits", image_size=(16, 16), channels=1),
    model=ModelConfig("lecture_cnn"),
    train=TrainConfig(epochs=8, batch_size=32, learning_rate=2e-3),
    tune=TuneConfig(space="lecture_cnn", tuner="random", max_trials=8),
))

register(ExperimentConfig(
    name="lecture_mnist",
    description="Lecture CNN on MNIST from tensorflow-datasets (or --dataset idx:DIR).",
    data=DataConfig(dataset="mnist", image_size=(28, 28), channels=1, test_fraction=0.2),
    model=ModelConfig("lecture_cnn"),
    train=TrainConfig(epochs=5, batch_size=64),
    tune=TuneConfig(space="lecture_cnn", tuner="hyperband", max_trials=20,
                    hyperband_max_epochs=6),
))

register(ExperimentConfig(
    name="lecture_flowers",
    description="Lecture CNN over colour flower photos at 64x64 (tf_flowers, or folder:DIR).",
    data=DataConfig(dataset="tf_flowers", image_size=(64, 64), channels=3),
    model=ModelConfig("lecture_cnn"),
    train=TrainConfig(epochs=8, batch_size=32),
    tune=TuneConfig(space="lecture_cnn", tuner="bayesian", max_trials=15),
))
