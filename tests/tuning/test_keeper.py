"""What a search keeps between trials: the best trial's model, when it is small."""

import types

import keras

from tuning import keeper


def dense(units: int) -> keras.Model:
    return keras.Sequential([keras.Input((1000,)), keras.layers.Dense(units)])


class Oracle:
    """Answers ``get_best_trials(1)`` as a KerasTuner oracle does, and counts the questions."""

    def __init__(self):
        self.best, self.asked = None, 0

    def get_best_trials(self, num_trials=1):
        self.asked += 1
        return [types.SimpleNamespace(trial_id=self.best)] if self.best else []


def ended(best: keeper.BestModel, trial_id: str, best_trial_id: str) -> Oracle:
    oracle = Oracle()
    oracle.best = best_trial_id
    best.ended(trial_id, oracle)
    return oracle


def test_the_best_trials_small_model_is_kept_until_a_better_trial_replaces_it():
    best = keeper.BestModel()
    first, second, third = dense(10), dense(10), dense(10)
    best.trained("0", first)
    ended(best, "0", best_trial_id="0")
    best.trained("1", second)
    ended(best, "1", best_trial_id="0")  # trial 1 scored lower
    assert best.get("0") is first and best.get("1") is None
    best.trained("2", third)
    ended(best, "2", best_trial_id="2")
    assert best.get("2") is third and best.get("0") is None


def test_a_model_over_the_size_limit_is_not_kept():
    best = keeper.BestModel()
    large = dense(1001)  # 1,002,001 parameters
    assert large.count_params() > keeper.KEEP_MAX_PARAMETERS
    best.trained("0", large)
    ended(best, "0", best_trial_id="0")
    assert best.get("0") is None  # the winner is rebuilt from its checkpoint


def test_a_worker_keeps_nothing_and_the_oracle_is_asked_only_for_a_kept_candidate():
    worker = keeper.BestModel(keep=False)
    worker.trained("0", dense(10))
    assert ended(worker, "0", best_trial_id="0").asked == 0  # no remote question per trial
    assert worker.get("0") is None
    best = keeper.BestModel()
    best.trained("0", dense(1001))  # too large to keep: nothing to ask about
    assert ended(best, "0", best_trial_id="0").asked == 0
