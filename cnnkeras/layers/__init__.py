"""Custom Keras layers; importing this package registers them for ``keras.saving``."""

from cnnkeras.layers.nn_conv import (  # noqa: F401
    NNAtrousConv2D,
    NNConv1D,
    NNConv2DTranspose,
    NNConv3D,
    NNDepthwiseConv2D,
    NNSeparableConv2D,
)
