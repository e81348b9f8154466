"""Transfer learning with Inception v3, after the Keras transfer-learning guide.

- Phase 1: the ImageNet base frozen (and called with ``training=False``, so batch
  normalisation stays in inference mode); a new head (global average pooling,
  dropout, softmax) trained, on the images with augmentation or, with
  ``bottlenecks=True``, on base features computed once and cached on disk.
- Phase 2: the base's top, from a named block (``mixed7``) on, fine-tuned at a
  learning rate ten times lower, batch normalisation still frozen.
- The held-out test split evaluated (accuracy, per-class precision and recall,
  confusion matrix, misclassified images), everything in one MLflow run with a
  nested run per phase, and the model saved as ``.keras`` with its class names.

Modules: ``model`` (base, head, freezing), ``bottleneck`` (cached features),
``evaluation`` (test report and plots), ``saving`` (model + class names),
``recipe`` (the run).
"""

from cnnkeras.transfer.recipe import (
    TransferConfig,
    TransferResult,
    describe,
    load_splits,
    run_transfer,
)

__all__ = ["TransferConfig", "TransferResult", "describe", "load_splits", "run_transfer"]
