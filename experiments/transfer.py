"""Inception v3 transfer learning on flowers, the Keras transfer-learning guide's recipe.

``transfer_flowers``: the ImageNet Inception v3 base (``model.options.weights``:
``imagenet``, ``none`` or a base weights file) frozen under a new head (dropout 0.2,
softmax over the five flowers), trained with augmentation for ``train.epochs``; then
the base from ``transfer.fine_tune_from`` (``mixed7``) on fine-tuned for
``transfer.fine_tune_epochs`` (None: as many) at a tenth of ``train.learning_rate``,
batch normalisation frozen. Data: tf_flowers (3,670 photos), or any ``folder:DIR``.

    cnnkeras train --experiment transfer_flowers --set data.dataset=folder:DIR \\
        --set model.options.weights=none --set train.epochs=3
    cnnkeras transfer --data folder:DIR --weights none --epochs 3      # the same, short
"""

from cnnkeras.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    RuntimeConfig,
    TrainConfig,
    TransferConfig,
    TuneConfig,
)
from experiments import register

register(ExperimentConfig(
    name="transfer_flowers",
    description="ImageNet Inception v3 -> five kinds of flower (tf_flowers, or folder:DIR): "
                "the head on the frozen base, then fine-tuning from mixed7 at a tenth of the "
                "learning rate; 299x299, augmentation, dropout 0.2.",
    data=DataConfig(dataset="tf_flowers", image_size=(299, 299), channels=3),
    model=ModelConfig("inception_v3", {"weights": "imagenet", "frozen_base": True,
                                       "dropout": 0.2, "augment": True}),
    train=TrainConfig(epochs=10, batch_size=32, learning_rate=1e-3),
    tune=TuneConfig(space="inception_v3", tuner="random", max_trials=6),
    runtime=RuntimeConfig(verbose=2),
    transfer=TransferConfig(fine_tune_epochs=None, fine_tune_from="mixed7",
                            fine_tune_factor=0.1),
))
