"""What a search keeps between trials: the best trial's model, when it is small."""

import keras

from tuning import keeper


def dense(units: int) -> keras.Model:
    return keras.Sequential([keras.Input((1000,)), keras.layers.Dense(units)])


def test_the_best_trials_small_model_is_kept_until_a_better_trial_replaces_it():
    best = keeper.BestModel()
    first, second, third = dense(10), dense(10), dense(10)
    best.trained("0", first)
    best.ended("0", best_trial_id="0")
    best.trained("1", second)
    best.ended("1", best_trial_id="0")  # trial 1 scored lower
    assert best.get("0") is first and best.get("1") is None
    best.trained("2", third)
    best.ended("2", best_trial_id="2")
    assert best.get("2") is third and best.get("0") is None


def test_a_model_over_the_size_limit_is_not_kept():
    best = keeper.BestModel()
    large = dense(1001)  # 1,002,001 parameters
    assert large.count_params() > keeper.KEEP_MAX_PARAMETERS
    best.trained("0", large)
    best.ended("0", best_trial_id="0")
    assert best.get("0") is None  # the winner is rebuilt from its checkpoint
