"""Architecture families; importing this package registers every builder."""

from cnnkeras.architectures import (  # noqa: F401  # noqa: F401
    alexnet,
    googlenet,
    inception,
    lecture,  # noqa: F401
    lenet,
    nn_segmentation,
    nn_variants,
    resnet,
)
