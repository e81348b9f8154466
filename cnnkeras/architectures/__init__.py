"""Architecture families; importing this package registers every builder."""

from cnnkeras.architectures import lecture  # noqa: F401
from cnnkeras.architectures import nn_segmentation, nn_variants  # noqa: F401
from cnnkeras.architectures import alexnet, googlenet, inception, lenet, resnet  # noqa: F401
