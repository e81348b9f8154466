"""Between a search's trials: the garbage each trial leaves, and the best trial's model.

``freeze_imports`` runs as a search starts, ``settle_garbage`` before every trial.
``BestModel`` holds the model of the best trial so far that this process trained, at its
best epoch's weights (``tuning.checkpoints`` leaves a model there): the search's winner,
delivered without building it again from the checkpoint and tracing its evaluation
(``tuning.winner``).
"""

from __future__ import annotations

import gc
from typing import Optional

import keras
import tensorflow as tf


def freeze_imports() -> None:
    """Freeze what is alive when a search starts.

    KerasTuner runs ``gc.collect()`` before every trial: over the millions of objects that
    TensorFlow, Keras and MLflow leave at import, ~0.6 s a trial on a laptop core. Frozen
    (moved to a generation the collector skips), they cost nothing; what trials make is
    still collected.
    """
    gc.freeze()


def settle_garbage() -> None:
    """Collect what earlier trials left, once, and freeze what survives.

    KerasTuner builds each trial's model after two full collections (``clear_session``'s and
    its own). Every trial leaves ~12,000 objects that no collection frees (graphs that
    TensorFlow traced for it), so unfrozen, those collections grew from 9 ms to 80 ms a
    trial over the 8 trials of `make tune` (0.67 s in all), and would grow on in a longer
    search. One collection here frees the previous trial's model; what survives it is
    frozen, so the next collections walk only what this trial makes (0.08 s in all).
    """
    keras.backend.clear_session()  # collects too
    gc.freeze()


KEEP_MAX_PARAMETERS = 1_000_000


class BestModel:
    """The model of the best trial so far, when this process trained it.

    Only models of at most ``KEEP_MAX_PARAMETERS`` parameters, and not on a GPU. A kept
    model is frozen with the survivors of the next trial's collection (``settle_garbage``),
    so when a better trial replaces it, it is never freed: a small model costs little, and
    a large one's rebuilding is a small part of its search. On a GPU the kept model's
    variables would also take device memory from every later trial. Otherwise the winner
    is rebuilt from its checkpoint.
    """

    def __init__(self, keep: bool = True):
        self.keep = keep  # False: keep nothing (a worker: the chief delivers the winner)
        self.kept: Optional[tuple] = None  # (trial id, model)
        self.fitted: Optional[tuple] = None  # (trial id, model) of the trial that just ran

    def trained(self, trial_id: str, model) -> None:
        """``model`` is what trial ``trial_id`` trained (its only execution)."""
        small = model.count_params() <= KEEP_MAX_PARAMETERS
        self.fitted = (trial_id, model) if self.keep and small else None

    def ended(self, trial_id: str, oracle) -> None:
        """Trial ``trial_id`` ended; keep its model if it is now ``oracle``'s best trial
        (the oracle is asked only when there is a model to keep)."""
        fitted, self.fitted = self.fitted, None
        if fitted is None or fitted[0] != trial_id or tf.config.list_physical_devices("GPU"):
            return
        best = oracle.get_best_trials(1)
        if best and best[0].trial_id == trial_id:
            self.kept = fitted

    def get(self, trial_id: str):
        """The model kept for ``trial_id``, or None."""
        return self.kept[1] if self.kept and self.kept[0] == trial_id else None
