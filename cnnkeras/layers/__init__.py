"""Custom Keras layers; importing this package registers them for ``keras.saving``."""

from cnnkeras.layers.lenet import (  # noqa: F401
    ConnectionTableConv2D,
    DigitBitmaps,
    EuclideanRBF,
    ScaledTanh,
    Subsampling2D,
)
from cnnkeras.layers.lrn import LocalResponseNormalization  # noqa: F401
from cnnkeras.layers.nn_conv import (  # noqa: F401
    NNAtrousConv2D,
    NNConv1D,
    NNConv2DTranspose,
    NNConv3D,
    NNDepthwiseConv2D,
    NNSeparableConv2D,
)
from cnnkeras.layers.pooling import (  # noqa: F401
    POOLING_KINDS,
    DepthwiseMaxPooling2D,
    L2Pooling2D,
    pooling_layer,
)
