"""Search spaces for the tf.nn convolution variants, one per architecture name.

Each varies the filters, kernel size, stride and padding of every conv block
(hyperparameters ``filters_i``, ``kernel_size_i``, ``strides_i``, ``padding_i``)
plus what the variant adds: dilation rates, depth multiplier, block style.
A combination whose sizes do not fit raises ``GeometryError`` in the builder
and becomes a FAILED trial.
"""

from __future__ import annotations

from cnnkeras.config import ExperimentConfig
from tuning.spaces import SPACES, training_knobs, with_options

# named rate stacks for the atrous segmenter (hp.Choice values are strings)
RATE_STACKS = {"1-2-4-8": (1, 2, 4, 8), "1-2-4": (1, 2, 4), "1-1-1-1": (1, 1, 1, 1),
               "2-4-8-16": (2, 4, 8, 16)}


def conv_blocks(hp, count: int, *, filters, kernels, strides=(1, 2),
                paddings=("valid", "same")) -> dict:
    """filters, kernel_sizes, strides and paddings options, one hyperparameter per block each."""
    blocks = range(1, count + 1)
    return dict(
        filters=tuple(hp.Choice(f"filters_{i}", list(filters)) for i in blocks),
        kernel_sizes=tuple(hp.Choice(f"kernel_size_{i}", list(kernels)) for i in blocks),
        strides=tuple(hp.Choice(f"strides_{i}", list(strides)) for i in blocks),
        paddings=tuple(hp.Choice(f"padding_{i}", list(paddings)) for i in blocks),
    )


@SPACES.register("conv1d_sequence")
def conv1d_sequence(hp, base: ExperimentConfig) -> ExperimentConfig:
    config = with_options(
        base, "conv1d_sequence",
        **conv_blocks(hp, 2, filters=(16, 32, 64), kernels=(3, 5, 7),
                      paddings=("valid", "same", "causal")),
        dense_units=hp.Choice("dense_units", [0, 64, 128]),
        dropout=hp.Choice("dropout", [0.0, 0.25]),
    )
    return training_knobs(hp, config)


@SPACES.register("conv3d_volume")
def conv3d_volume(hp, base: ExperimentConfig) -> ExperimentConfig:
    config = with_options(
        base, "conv3d_volume",
        **conv_blocks(hp, 2, filters=(8, 16, 32), kernels=(2, 3)),
        dense_units=hp.Choice("dense_units", [0, 64]),
    )
    return training_knobs(hp, config)


@SPACES.register("atrous_segmenter")
def atrous_segmenter(hp, base: ExperimentConfig) -> ExperimentConfig:
    """No stride or padding here: tf.nn.atrous_conv2d has no stride and 'same' keeps every pixel."""
    config = with_options(
        base, "atrous_segmenter",
        filters=hp.Choice("filters", [16, 32, 48]),
        kernel_sizes=hp.Choice("kernel_size", [3, 5]),
        dilation_rates=RATE_STACKS[hp.Choice("dilation_rates", list(RATE_STACKS))],
    )
    return training_knobs(hp, config)


@SPACES.register("transpose_decoder")
def transpose_decoder(hp, base: ExperimentConfig) -> ExperimentConfig:
    config = with_options(
        base, "transpose_decoder",
        **conv_blocks(hp, 2, filters=(16, 32, 64), kernels=(2, 3, 4)),
        bottleneck_convs=hp.Choice("bottleneck_convs", [0, 1, 2]),
    )
    return training_knobs(hp, config)


@SPACES.register("separable_cnn")
def separable_cnn(hp, base: ExperimentConfig) -> ExperimentConfig:
    config = with_options(
        base, "separable_cnn",
        **conv_blocks(hp, 3, filters=(16, 32, 64, 128), kernels=(3, 5)),
        depth_multiplier=hp.Choice("depth_multiplier", [1, 2]),
        block_style=hp.Choice("block_style", ["separable", "depthwise"]),
    )
    return training_knobs(hp, config)
