"""The one part of a training run that differs between routes: the step that fits and evaluates.

``KerasFit`` is ``model.fit`` with a ``checkpoints.FitBackup``; ``CustomLoop`` is the
``strategy.run`` loop of ``custom_loop`` with an ``EpochCheckpoint``, for
multi-worker strategies where ``model.fit`` fails (keras-team/keras#20585). Both
restore their backup, fit, evaluate and say where their backup is; everything a
run records around them is recorded once, by ``cnnkeras.training.run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from cnnkeras import distribute
from cnnkeras.training import checkpoints, custom_loop


def validation(datasets):
    """The validation split, or None when it is empty (``data.validation_fraction=0``, as in
    the MNIST 8,000/2,000 recipes): no empty pass, no "ran out of data" warning each epoch."""
    return datasets.validation if datasets.sizes.get("validation") else None


class KerasFit:
    """``model.fit`` / ``model.evaluate``: every strategy but the multi-worker one."""

    route = "fit"

    def __init__(self, strategy: tf.distribute.Strategy, root: Path):
        self.strategy, self.root = strategy, Path(root)
        self.directory = self.root  # what this process writes and locks
        self.resumed = 0

    def restore(self, model: keras.Model) -> int:
        """Load the backup into ``model`` and its optimizer (call in the scope); its epoch."""
        self.resumed = checkpoints.restore_fit(self.root, model)
        return self.resumed

    def fit(self, model: keras.Model, datasets, *, epochs: int, callbacks: Sequence,
            verbose: int) -> dict:
        backup = checkpoints.fit_callback(self.root)
        try:
            return model.fit(datasets.train, validation_data=validation(datasets),
                             epochs=epochs, initial_epoch=self.resumed, shuffle=False,
                             verbose=verbose, callbacks=[backup, *callbacks]).history
        finally:  # a crash keeps the epochs it finished
            backup.close()

    def evaluate(self, model: keras.Model, dataset) -> dict:
        return model.evaluate(dataset, return_dict=True, verbose=0)


class CustomLoop:
    """``custom_loop.fit`` / ``evaluate`` under ``strategy.run``, with an ``EpochCheckpoint``.

    In a cluster every worker checkpoints (TensorFlow requires all of them to take
    part in saving): the chief into the backup folder, the others into their own
    ``workertemp_<task>`` inside it; they check that they agree on the epoch.
    """

    route = "custom_loop"

    def __init__(self, strategy: tf.distribute.Strategy, root: Path):
        self.strategy, self.root = strategy, Path(root)
        self.directory = checkpoints.write_dir(self.root, strategy)
        self.checkpoint = None

    def restore(self, model: keras.Model) -> int:
        """Load the latest checkpoint into ``model`` and its optimizer (call in the scope)."""
        self.checkpoint = checkpoints.EpochCheckpoint(self.directory, model=model,
                                                      optimizer=model.optimizer)
        resumed = self.checkpoint.restore()
        with custom_loop.survivors_explain():
            custom_loop.check_agreement(self.strategy, resumed)
        return resumed

    def fit(self, model: keras.Model, datasets, *, epochs: int, callbacks: Sequence,
            verbose: int) -> dict:
        progress = [custom_loop.EpochLine(epochs)] if verbose else []
        with custom_loop.survivors_explain():
            return custom_loop.fit(model, self.strategy, datasets.train, validation(datasets),
                                   epochs=epochs, checkpoint=self.checkpoint,
                                   callbacks=[*callbacks, *progress])

    def evaluate(self, model: keras.Model, dataset) -> dict:
        with custom_loop.survivors_explain():
            return custom_loop.evaluate(model, self.strategy, dataset)


def loop_for(strategy: tf.distribute.Strategy, root: Path):
    """The custom loop where ``model.fit`` fails (several workers), else ``model.fit``."""
    return (CustomLoop if distribute.is_multi_worker(strategy) else KerasFit)(strategy, root)
