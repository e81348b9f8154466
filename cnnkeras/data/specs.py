"""The vocabulary of dataset specs, importable without TensorFlow (``cnnkeras list``)."""

TFDS_NAMES = ("mnist", "fashion_mnist", "cifar10", "tf_flowers")
DERIVED_FORMS = ("moving:SPEC", "segmentation:SPEC")
SPEC_FORMS = ("digits", *TFDS_NAMES, "idx:DIR", "folder:DIR", *DERIVED_FORMS)
