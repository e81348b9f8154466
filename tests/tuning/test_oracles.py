"""The oracles never spend a trial on an impossible geometry: the pure walk agrees with the
builder, the grid order, and a crowded space searched by each of the four tuners."""

import itertools

import keras_tuner as kt
import pytest
from mlflow.tracking import MlflowClient

import cnnkeras
import experiments
from cnnkeras.config import apply_overrides
from cnnkeras.geometry import GeometryError
from cnnkeras.registry import ARCHITECTURES, Registry
from tuning import oracles, search
from tuning.spaces import SPACES, training_knobs, with_options

BASE = experiments.get("lecture_digits")


def crowded(hp, base):
    """Three lecture blocks on 16x16: most kernel/stride/padding combinations cannot fit."""
    config = training_knobs(hp, base)  # declared first, so the grid varies the blocks fastest
    blocks = range(1, 4)
    return with_options(
        config, "lecture_cnn", filters=(8, 8, 8),
        kernel_sizes=tuple(hp.Choice(f"kernel_size_{i}", [7, 5, 3]) for i in blocks),
        strides=tuple(hp.Choice(f"strides_{i}", [2, 1]) for i in blocks),
        paddings=tuple(hp.Choice(f"padding_{i}", ["valid", "same"]) for i in blocks))


def every_block_combination(space, base):
    """Every value of every hyperparameter but the first two (the training knobs)."""
    hp = kt.HyperParameters()
    space(hp, base)
    knobs, blocks = hp.space[:2], hp.space[2:]
    names = [p.name for p in blocks]
    for values in itertools.product(*(p.values for p in blocks)):
        yield {**{p.name: p.default for p in knobs}, **dict(zip(names, values, strict=True))}


def builds(config, input_shape) -> bool:
    try:
        cnnkeras.build("lecture_cnn", input_shape=input_shape, num_classes=10,
                       **dict(config.model.options))
    except GeometryError:
        return False
    return True


def test_the_pure_walk_and_the_builder_agree_and_most_of_the_crowded_space_cannot_fit():
    check = oracles.GeometryCheck(crowded, BASE, (16, 16, 1), 10)
    verdicts = {tuple(v.items()): check(v) for v in every_block_combination(crowded, BASE)}
    impossible = [key for key, reason in verdicts.items() if reason is not None]
    assert len(verdicts) == 3 ** 3 * 2 ** 3 * 2 ** 3
    assert len(impossible) / len(verdicts) > 0.8
    assert ARCHITECTURES.metadata("lecture_cnn")["geometry"] is not None
    for key in [*impossible[::400], *(k for k in verdicts if k not in impossible)][:12]:
        hp = kt.HyperParameters()
        hp.values = dict(key)
        assert builds(crowded(hp, BASE), (16, 16, 1)) == (verdicts[key] is None)
    sample = next(reason for reason in verdicts.values() if reason)
    assert "would be" in sample and ": input " in sample  # names the layer and the sizes


def test_an_architecture_without_a_walk_is_judged_by_building_it():
    resnet = SPACES.get("resnet18")
    assert ARCHITECTURES.metadata("resnet18").get("geometry") is None
    check = oracles.GeometryCheck(resnet, BASE, (16, 16, 1), 10)
    defaults = kt.HyperParameters()
    resnet(defaults, BASE)
    reason = check(defaults.values)
    assert "at least 32x32" in reason and "conv5_block1" in reason
    assert check({**defaults.values, "strides_2": 1, "strides_3": 1, "strides_4": 1}) is None


def test_the_grid_runs_in_kerastuners_order_defaults_first_last_name_fastest():
    space = kt.HyperParameters()
    space.Choice("a", [1, 2])
    space.Choice("b", ["x", "y", "z"], default="y")
    order, values = [], {"a": 1, "b": "y"}
    while values is not None:
        order.append((values["a"], values["b"]))
        values = oracles.next_combination(space, values)
    assert order == [(1, "y"), (1, "x"), (1, "z"), (2, "y"), (2, "x"), (2, "z")]


@pytest.fixture
def crowded_search(store, tmp_path, monkeypatch):
    """``crowded_search(*overrides)``: run_search over the crowded space on 16x16 digits."""
    registry = Registry("search space")
    registry.add("crowded", crowded)
    monkeypatch.setattr(search, "SPACES", registry)

    def run(*overrides):
        config = apply_overrides(BASE, [
            "train.epochs=1", "data.limit=100", "runtime.verbose=0", "data.image_size=16x16",
            "tune.space=crowded", f"tune.directory={tmp_path / 'tuner'}", *overrides])
        return search.run_search(config)

    return run


@pytest.mark.parametrize("tuner,overrides,expected", [
    ("random", ("tune.max_trials=3",), 3),
    # Bayesian and Hyperband (about 10 s each) run with `pytest -m slow`; their search-level
    # runs stay in the fast suite in tests/tuning/test_search.py.
    pytest.param("bayesian", ("tune.max_trials=3",), 3, marks=pytest.mark.slow),
    ("grid", ("tune.max_trials=3",), 3),
    pytest.param("hyperband", ("tune.hyperband_max_epochs=2",), 2, marks=pytest.mark.slow),
])
def test_a_crowded_space_trains_every_trial_under_each_tuner(crowded_search, store, capsys,
                                                             tuner, overrides, expected):
    result = crowded_search(f"tune.tuner={tuner}", *overrides)
    client = MlflowClient(store)
    trials = client.search_runs([result.experiment_id],
                                f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(trials) == expected
    assert {r.data.tags["trial_status"] for r in trials} == {"COMPLETED"}
    assert {r.info.status for r in trials} == {"FINISHED"}
    check = oracles.GeometryCheck(crowded, BASE, (16, 16, 1), 10)
    for run in trials:
        options = run.data.params
        hp = kt.HyperParameters()
        crowded(hp, BASE)
        hp.values = {p.name: type(p.default)(options[p.name]) for p in hp.space}
        assert check(hp.values) is None
    pruned = result.summary.pruned_geometry
    assert pruned > 0
    parent = client.get_run(result.parent_run_id)
    assert parent.data.metrics["candidates_pruned_geometry"] == pruned
    assert parent.data.metrics["trials_rejected_geometry"] == 0
    assert f"{expected} completed, 0 failed" in capsys.readouterr().out


def test_a_space_with_no_fitting_candidate_fails_the_search_in_one_line(crowded_search, store,
                                                                        monkeypatch):
    monkeypatch.setattr(oracles, "MAX_CANDIDATES", 40)
    with pytest.raises(ValueError, match="No candidate of this search space fits the input: "
                                         "40 in a row were impossible"):
        crowded_search("data.image_size=4x4")
    (parent,) = MlflowClient(store).search_runs(
        [MlflowClient(store).get_experiment_by_name("lecture_digits").experiment_id])
    assert parent.info.status == "FAILED"
