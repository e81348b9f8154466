"""KerasTuner's four oracles, never spending a trial on an impossible geometry.

Each oracle's ``populate_space`` checks a candidate before it becomes a trial:
the space turns the candidate into a config, and the architecture's pure
geometry walk (registry metadata ``geometry``, e.g. ``lecture_cnn_geometry``:
output sizes through every conv and pool, no layer built) says whether it fits
the input. An architecture without a walk is built once per distinct set of
options instead, and a ``GeometryError`` from its builder is the verdict.

An impossible candidate is drawn again (random, Bayesian, Hyperband's first
round) or skipped (grid: the next combination), and counted in
``pruned_geometry``, which the oracle keeps in ``oracle.json`` across resumes.
"""

from __future__ import annotations

import inspect
import random
from typing import Optional

import keras_tuner as kt

from cnnkeras.config import ExperimentConfig
from cnnkeras.geometry import GeometryError

MAX_CANDIDATES = 5000  # per trial: a space this crowded with misfits is its author's to fix
PRUNED_STATE = "cnnkeras_pruned_geometry"
RUNNING, STOPPED = kt.engine.trial.TrialStatus.RUNNING, kt.engine.trial.TrialStatus.STOPPED


class GeometryCheck:
    """``check(values)``: None when the candidate's model fits the input, else the reason."""

    def __init__(self, space, base: ExperimentConfig, input_shape, num_classes: int):
        self.space, self.base = space, base
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.verdicts: dict = {}  # (architecture, options) -> reason or None

    def __call__(self, values: dict) -> Optional[str]:
        hp = kt.HyperParameters()
        hp.values = dict(values)
        model = self.space(hp, self.base).model
        key = (model.architecture, repr(sorted(model.options.items())))
        if key not in self.verdicts:
            self.verdicts[key] = self.verdict(model.architecture, dict(model.options))
        return self.verdicts[key]

    def verdict(self, architecture: str, options: dict) -> Optional[str]:
        from cnnkeras.registry import ARCHITECTURES

        builder = ARCHITECTURES.get(architecture)
        walk = ARCHITECTURES.metadata(architecture).get("geometry")
        try:
            if walk is None:
                self.build_once(architecture, options)
                return None
            try:
                arguments = inspect.signature(builder).bind(self.input_shape, self.num_classes,
                                                            **options)
            except TypeError as err:
                raise ValueError(f"{architecture} cannot be built with options {options}: "
                                 f"{err}") from None
            arguments.apply_defaults()
            walk(*arguments.args, **arguments.kwargs)
        except GeometryError as err:
            return str(err)
        return None

    def build_once(self, architecture: str, options: dict) -> None:
        """Build and drop the model, leaving Python's and NumPy's random states as they were."""
        import keras
        import numpy as np

        import cnnkeras

        states = random.getstate(), np.random.get_state()
        try:
            cnnkeras.build(architecture, input_shape=self.input_shape,
                           num_classes=self.num_classes, **options)
        finally:
            keras.backend.clear_session()
            random.setstate(states[0])
            np.random.set_state(states[1])


def values_key(values: dict) -> tuple:
    """A candidate's identity: its hyperparameters, without Hyperband's bookkeeping."""
    return tuple(sorted((k, repr(v)) for k, v in values.items() if not k.startswith("tuner/")))


class PruningOracle:
    """Mixed into a KerasTuner oracle: ``populate_space`` hands out only candidates that fit.

    ``check`` is a ``GeometryCheck``. Subclasses say how to get another candidate
    (``redraw``); the first comes from KerasTuner's own ``populate_space``.
    """

    def __init__(self, *args, check, **kwargs):
        super().__init__(*args, **kwargs)
        self.check, self.pruned_geometry = check, 0

    def populate_space(self, trial_id):
        response = self.first_candidate(trial_id)
        reason = None
        for attempt in range(MAX_CANDIDATES):
            values = response.get("values")
            # Hyperband's later rounds train on a trial that was built already
            if response.get("status") != RUNNING or not values or "tuner/trial_id" in values:
                return response
            reason = self.check(values)
            if reason is None:
                return response
            self.pruned_geometry += 1
            response = self.redraw(trial_id, values, attempt)
        if not self.trials:
            raise ValueError(f"No candidate of this search space fits the input: "
                             f"{MAX_CANDIDATES} in a row were impossible (the last: {reason}).")
        print(f"Search stopped: {MAX_CANDIDATES} candidates in a row did not fit the input "
              f"(the last: {reason}).")
        return {"status": STOPPED, "values": None}

    def first_candidate(self, trial_id) -> dict:
        return super().populate_space(trial_id)

    def redraw(self, trial_id, values: dict, attempt: int) -> dict:
        return super().populate_space(trial_id)

    def random_values(self, trial_id, attempt: int) -> dict:
        """Random values for every active hyperparameter, untried when 100 draws allow."""
        rng = random.Random(f"{self.seed}:{trial_id}:{attempt}")
        tried = {values_key(t.hyperparameters.values) for t in self.trials.values()}
        space = self.get_space().space
        for _ in range(100):
            hps = kt.HyperParameters()
            for hp in space:
                hps.merge([hp])
                if hps.is_active(hp):
                    hps.values[hp.name] = hp.random_sample(rng.getrandbits(32))
            if values_key(hps.values) not in tried:
                break
        return hps.values

    def get_state(self):
        return {**super().get_state(), PRUNED_STATE: self.pruned_geometry}

    def set_state(self, state):
        super().set_state(state)
        self.pruned_geometry = state.get(PRUNED_STATE, 0)


class RandomOracle(PruningOracle, kt.oracles.RandomSearchOracle):
    """Random search: an impossible candidate is replaced by KerasTuner's next random draw."""


class BayesianOracle(PruningOracle, kt.oracles.BayesianOptimizationOracle):
    """Bayesian optimisation: the Gaussian process may propose the same impossible point
    again, so an impossible candidate is replaced by random values."""

    def redraw(self, trial_id, values: dict, attempt: int) -> dict:
        return {"status": RUNNING, "values": self.random_values(trial_id, attempt)}


class HyperbandOracle(PruningOracle, kt.oracles.HyperbandOracle):
    """Hyperband: a first-round candidate that does not fit gets random values in its place,
    keeping the bracket, round and epochs KerasTuner gave it."""

    def redraw(self, trial_id, values: dict, attempt: int) -> dict:
        bookkeeping = {k: v for k, v in values.items() if k.startswith("tuner/")}
        return {"status": RUNNING,
                "values": {**self.random_values(trial_id, attempt), **bookkeeping}}


class GridOracle(PruningOracle, kt.oracles.GridSearchOracle):
    """Grid search in KerasTuner's order (defaults first, the last hyperparameter fastest),
    taken up from the newest trial's combination each time.

    KerasTuner's grid remembers its place in memory only, so it could neither skip a
    combination nor continue a resumed search; this one does both.
    """

    def first_candidate(self, trial_id) -> dict:
        if not self.start_order:
            space = self.get_space()
            return {"status": RUNNING, "values": {hp.name: hp.default for hp in space.space
                                                  if space.is_active(hp)}}
        newest = self.trials[self.start_order[-1]].hyperparameters.values
        return self.redraw(trial_id, newest, 0)

    def redraw(self, trial_id, values: dict, attempt: int) -> dict:
        following = next_combination(self.get_space(), values)
        if following is None:
            return {"status": STOPPED, "values": None}
        return {"status": RUNNING, "values": following}


def next_combination(space: kt.HyperParameters, values: dict) -> Optional[dict]:
    """The combination after ``values`` in grid order, None after the last one."""
    hps = space.copy()
    hps.values = dict(values)
    for hp in reversed(hps.space):
        if hps.is_active(hp):
            order = [hp.default, *(v for v in hp.values if v != hp.default)]
            position = order.index(hps.values[hp.name])
            if position + 1 < len(order):
                hps.values[hp.name] = order[position + 1]
                hps.ensure_active_values()
                return dict(hps.values)
        hps.values[hp.name] = hp.default
    return None


ORACLES = {"random": RandomOracle, "bayesian": BayesianOracle, "hyperband": HyperbandOracle,
           "grid": GridOracle}
