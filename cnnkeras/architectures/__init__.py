"""Architecture families; importing this package registers every builder.

Every model they build takes pixel values in [0, 255] and scales them itself, in
its first layer after the input (``pixels``, ``blocks.image_input``).
"""

from cnnkeras.architectures import (  # noqa: F401
    alexnet,
    googlenet,
    inception,
    lecture,
    lenet,
    nn_segmentation,
    nn_variants,
    resnet,
)
