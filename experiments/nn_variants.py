"""The tf.nn convolution variants, each on data that runs offline here.

Every default dataset is built from scikit-learn's 1,797 real handwritten
digits (resized to 28x28); ``--dataset`` swaps in MNIST from IDX files with the
same derivation (``idx:DIR``, ``moving:idx:DIR``, ``segmentation:idx:DIR``).
The clips and masks are derived from the real images: the motion is synthetic,
the masks are the digit's own pixels thresholded at half intensity.
"""

from cnnkeras.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig, TuneConfig
from experiments import register


def variant(name: str, architecture: str, description: str, dataset: str = "digits", *,
            epochs: int = 6, max_trials: int = 10) -> ExperimentConfig:
    """One experiment: ``architecture`` on a digits-derived ``dataset``, searched by its space."""
    return register(ExperimentConfig(
        name=name,
        description=description,
        data=DataConfig(dataset=dataset, image_size=(28, 28), channels=1),
        model=ModelConfig(architecture),
        train=TrainConfig(epochs=epochs, batch_size=32, learning_rate=2e-3),
        tune=TuneConfig(space=architecture, tuner="random", max_trials=max_trials),
    ))


variant(
    "conv1d_digits", "conv1d_sequence",
    "1D CNN (tf.nn.conv1d) reading each 28x28 digit as 28 time steps of 28 row pixels; "
    "real sklearn digits (or --dataset idx:DIR for MNIST).",
)
variant(
    "conv3d_moving_digits", "conv3d_volume",
    "3D CNN (tf.nn.conv3d) classifying 8-frame 28x28 clips of a real digit (shrunk to 14x14) "
    "moving and bouncing across the frame; the motion is synthetic and seeded "
    "(or --dataset moving:idx:DIR for MNIST digits).",
    "moving:digits", epochs=8, max_trials=6,
)
variant(
    "atrous_segmentation_digits", "atrous_segmenter",
    "Per-pixel digit/background segmentation (11 classes: background, 0-9) by dilated "
    "tf.nn.atrous_conv2d layers without pooling; masks are the real digits' own pixels "
    "thresholded at half intensity (or --dataset segmentation:idx:DIR for MNIST).",
    "segmentation:digits",
)
variant(
    "transpose_segmentation_digits", "transpose_decoder",
    "The same segmentation by a strided encoder and a tf.nn.conv2d_transpose decoder "
    "back to 28x28 (or --dataset segmentation:idx:DIR for MNIST).",
    "segmentation:digits",
)
variant(
    "separable_digits", "separable_cnn",
    "Depthwise-separable classifier (tf.nn.separable_conv2d blocks, MobileNet/Xception "
    "style) with about 7x fewer parameters than its standard-conv twin; real sklearn digits "
    "(or --dataset idx:DIR for MNIST).",
)
