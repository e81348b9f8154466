"""Transfer learning with Inception v3, after the Keras transfer-learning guide.

A registered experiment (``transfer_flowers`` in ``experiments/transfer.py``) whose
config has a ``transfer`` section; ``train_experiment`` hands such a config to
``run_transfer``. The model is the registered ``inception_v3`` built with
``frozen_base=True``; the data are the one pipeline's (``cnnkeras.data``).

- Phase 1: the ImageNet base frozen (and called with ``training=False``, so batch
  normalisation stays in inference mode); the head (global average pooling,
  dropout, softmax) trained, on the images with augmentation or, with
  ``transfer.bottlenecks``, on base features computed once and cached on disk.
- Phase 2: the base's top, from a named block (``mixed7``) on, fine-tuned at a
  learning rate ten times lower, batch normalisation still frozen.
- The held-out test split evaluated (accuracy, per-class precision and recall,
  confusion matrix, misclassified images), everything in one MLflow run with a
  nested run per phase, and the model saved as ``.keras`` with its class names.

Modules: ``model`` (the base found, frozen, unfrozen; features and head alone),
``bottleneck`` (cached features), ``evaluation`` (test report and plots),
``saving`` (model + class names), ``recipe`` (the run).
"""

from cnnkeras.transfer.recipe import TransferResult, describe, load_datasets, run_transfer

__all__ = ["TransferResult", "describe", "load_datasets", "run_transfer"]
