"""A trial's best-epoch checkpoint, kept in memory and written once, when ``fit`` ends.

KerasTuner's ``SaveBestEpoch`` writes ``trial_NN/checkpoint.weights.h5`` at every
epoch that improves the objective: ~58 ms each for the lecture CNN on a laptop core,
at most of a search's epochs. ``in_memory`` puts ``BestEpochInMemory`` in its place:
the best epoch's weights are copied in memory (~3 ms) and the same file is written
from them once; the model ends ``fit`` holding them. It reads and updates the
KerasTuner callback's public attributes (``objective``, ``filepath``, ``best_value``),
so the best value still carries over executions and Hyperband still continues from the
file. A trial cut off mid-fit writes no file: KerasTuner re-runs it from its first
epoch anyway. A KerasTuner release without that callback leaves the callbacks as they
are.
"""

from __future__ import annotations

from typing import Sequence

import keras

KERAS_TUNER_CHECKPOINT = "SaveBestEpoch"  # keras_tuner's callback class (not exported)


def in_memory(callbacks: Sequence) -> list:
    """``callbacks`` with KerasTuner's best-epoch checkpoint replaced by ``BestEpochInMemory``."""
    return [BestEpochInMemory(c) if type(c).__name__ == KERAS_TUNER_CHECKPOINT else c
            for c in callbacks]


class BestEpochInMemory(keras.callbacks.Callback):
    """Writes ``checkpoint.filepath`` once, at the end of ``fit``, with the best epoch's weights."""

    def __init__(self, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        objective, checkpoint = self.checkpoint.objective, self.checkpoint
        if objective.has_value(logs):  # without it, KerasTuner saves every epoch: the last
            value = objective.get_value(logs)
            if not objective.better_than(value, checkpoint.best_value):
                return
            checkpoint.best_value = value
        self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        """The model is left at the best epoch's weights (as ``EarlyStopping`` with
        ``restore_best_weights`` leaves it), which the chief writes to the file."""
        if self.best_weights is None:
            return
        self.model.set_weights(self.best_weights)
        if self.model.distribute_strategy.extended.should_checkpoint:  # the chief writes
            self.model.save_weights(self.checkpoint.filepath)
        self.best_weights = None
