"""Search spaces for the classic families: ResNet, AlexNet/ZFNet, GoogLeNet, LeNet-5, Inception.

Each space is named after the architecture it builds, varies what that
builder exposes, and adds the shared learning rate and optimizer. Stages are
numbered from 1 in hyperparameter names (``filters_1`` is ResNet's ``conv2``
stage), so the names match the other spaces' columns in MLflow.
"""

from __future__ import annotations

from cnnkeras.config import ExperimentConfig
from tuning.spaces import SPACES, training_knobs, with_options

# per ResNet stage (conv2..conv5): the filter choices, the paper's width last
RESNET_WIDTHS = ((16, 32, 64), (32, 64, 128), (64, 128, 256), (128, 256, 512))
RESNET_VARIANTS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def resnet_space(variant: str):
    """Filters, kernel size and stride per stage of ``variant``.

    The first unit of each stage carries the stage's stride (the paper: 1, 2,
    2, 2, listed first so it is the default). There is no padding choice:
    residual units pad ``same`` so the shortcut and the residual branch add up.
    """

    def space(hp, base: ExperimentConfig) -> ExperimentConfig:
        stages = range(1, len(RESNET_WIDTHS) + 1)
        config = with_options(
            base, variant,
            filters=tuple(hp.Choice(f"filters_{i}", list(RESNET_WIDTHS[i - 1])) for i in stages),
            kernel_sizes=tuple(hp.Choice(f"kernel_size_{i}", [3, 5]) for i in stages),
            strides=tuple(hp.Choice(f"strides_{i}", [1, 2] if i == 1 else [2, 1])
                          for i in stages),
        )
        return training_knobs(hp, config)

    space.__name__ = variant
    space.__doc__ = f"{variant}: filters, kernel size and stride per stage; lr, optimizer."
    return space


for _variant in RESNET_VARIANTS:
    SPACES.add(_variant, resnet_space(_variant))


def dense_head_space(architecture: str):
    """AlexNet-style: dense width, dropout and local response normalisation."""

    def space(hp, base: ExperimentConfig) -> ExperimentConfig:
        config = with_options(
            base, architecture,
            dense_units=hp.Choice("dense_units", [256, 1024, 4096]),
            dropout=hp.Choice("dropout", [0.5, 0.0, 0.25]),
            lrn=hp.Boolean("lrn", default=True),
        )
        return training_knobs(hp, config)

    space.__name__ = architecture
    return space


for _architecture in ("alexnet", "zfnet"):
    SPACES.add(_architecture, dense_head_space(_architecture))


@SPACES.register("googlenet")
def googlenet(hp, base: ExperimentConfig) -> ExperimentConfig:
    config = with_options(base, "googlenet", dropout=hp.Choice("dropout", [0.4, 0.0, 0.2]),
                          lrn=hp.Boolean("lrn", default=True))
    return training_knobs(hp, config)


@SPACES.register("lenet5_modern")
def lenet5_modern(hp, base: ExperimentConfig) -> ExperimentConfig:
    config = with_options(base, "lenet5_modern",
                          dropout=hp.Choice("dropout", [0.0, 0.25, 0.5]))
    return training_knobs(hp, config)


@SPACES.register("lenet5")
def lenet5(hp, base: ExperimentConfig) -> ExperimentConfig:
    """The 1998 network has nothing to vary but its training."""
    return training_knobs(hp, with_options(base, "lenet5"))


@SPACES.register("inception_v3")
def inception_v3(hp, base: ExperimentConfig) -> ExperimentConfig:
    """Keras' Inception-v3 exposes no layer options; its training is searched."""
    return training_knobs(hp, with_options(base, "inception_v3"))
