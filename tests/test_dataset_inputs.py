"""Every run records its data as MLflow dataset inputs (the runs table's Dataset column):
one input per split, named by the dataset spec, with a digest that follows the data,
its source (a local path or the loading code) and a profile of shapes and sizes."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from mlflow.tracking import MlflowClient

import cnnkeras
import experiments
from cnnkeras import cli, data, tracking
from cnnkeras.config import apply_overrides
from cnnkeras.tracking import schema
from tuning.search import run_search

SPLITS = ["test", "train", "validation"]
SIZES = {"train": 5, "validation": 5, "test": 5}
PLAN = dict(validation_fraction=0.33, test_fraction=0.33, seed=5)


def plan(**changes):
    return data.SplitPlan(**{**PLAN, **changes})


def describe(spec: str, shape=(16, 16, 3), sizes=None):
    return data.describe(spec, shape=shape, sizes=sizes or SIZES, plan=plan())


def by_split(run) -> dict:
    """``{split: mlflow.entities.Dataset}``: a run's dataset inputs as MLflow stores them."""
    found = {}
    for dataset_input in run.inputs.dataset_inputs:
        [split] = [t.value for t in dataset_input.tags if t.key == "mlflow.data.context"]
        found[split] = dataset_input.dataset
    return found


def few_flowers(flowers_dir, folder, count: int = 3):
    """A copy of ``count`` real photos of two classes (modification times kept)."""
    for name in ("daisy", "rose"):
        (folder / name).mkdir(parents=True)
        for photo in sorted((flowers_dir / name).iterdir())[:count]:
            shutil.copy2(photo, folder / name / photo.name)
    return folder


@pytest.mark.slow  # a CLI run; test_training's in-process run checks its 3 inputs
def test_cnnkeras_train_on_digits_records_its_three_splits(tracking_store, run_cli, tmp_path):
    done = run_cli("train", "lecture_cnn", "--dataset", "digits", "--epochs", "1",
                   "--set", "data.limit=60", "--set", "runtime.verbose=0", cwd=tmp_path,
                   env={"MLFLOW_TRACKING_URI": tracking_store, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr
    run = MlflowClient(tracking_store).get_run(re.search(r"MLflow run: (\w+)", done.stdout)[1])
    datasets, params = by_split(run), run.data.params
    shape = cnnkeras.default_input_shape("lecture_cnn")
    facts = data.describe("digits", shape=shape, sizes={s: 60 for s in SPLITS}, plan=data.SplitPlan(
        float(params["data.validation_fraction"]), float(params["data.test_fraction"]),
        int(params["data.seed"]), 60))
    assert sorted(datasets) == SPLITS
    assert len({d.digest for d in datasets.values()}) == 3  # equal sizes, still three inputs
    for split, dataset in datasets.items():
        profile = json.loads(dataset.profile)
        assert dataset.name == "digits" and dataset.source_type == "code"
        assert json.loads(dataset.source) == {
            "tags": {"mlflow.source.name": "sklearn.datasets.load_digits"}}
        assert dataset.digest == facts.split_digest(split)
        assert profile["num_examples"] == int(params[f"data.size.{split}"]) == 60
        assert profile["examples_per_split"] == {s: 60 for s in SPLITS}
        assert profile["image_shape"] == list(shape) and profile["split"] == split
        features = json.loads(json.loads(dataset.schema)["mlflow_tensorspec"]["features"])
        assert features[0]["tensor-spec"]["shape"] == [-1, *shape]
    assert run.data.tags[schema.DATASET_DIGEST_TAG] == facts.digest


def test_the_digits_digest_is_the_arrays(monkeypatch):
    import sklearn.datasets

    real = sklearn.datasets.load_digits
    before = describe("digits")

    def one_pixel_changed(*args, **kwargs):
        digits = real(*args, **kwargs)
        digits.images[0, 0, 0] += 1
        return digits

    monkeypatch.setattr(sklearn.datasets, "load_digits", one_pixel_changed)
    after = describe("digits")
    assert after.digest != before.digest
    assert after.split_digest("train") != before.split_digest("train")
    assert describe("digits") == after


def test_a_folder_digest_changes_when_a_file_is_added_and_only_then(flowers_dir, tmp_path,
                                                                    tracking_store):
    folder = few_flowers(flowers_dir, tmp_path / "flowers")
    spec = f"folder:{folder}"
    loaded = data.load(spec, image_size=(16, 16), channels=3, batch_size=2, plan=plan())
    first = loaded.facts
    assert first.sizes == loaded.sizes == {"train": 2, "validation": 2, "test": 2}
    assert (first.name, first.source, first.local) == (spec, str(folder.resolve()), True)
    assert first.shape == loaded.input_shape == (16, 16, 3)
    assert data.load(spec, image_size=(16, 16), channels=3, batch_size=2,
                     plan=plan()).facts == first  # read again, nothing changed
    assert describe(spec, sizes=first.sizes).digest == first.digest  # copied files' digest
    shutil.copy2(sorted((flowers_dir / "rose").iterdir())[3], folder / "rose")
    added = describe(spec, sizes=first.sizes)  # same sizes: the digest follows the files
    assert added.digest != first.digest
    assert added.split_digest("train") != first.split_digest("train")
    assert describe(spec, sizes=first.sizes) == added

    run = tracking.create_run(tracking.experiment_id("datasets"), name="folder")
    run.log_datasets(first)
    run.log_datasets(added)  # a resumed run whose folder changed: the current ones win
    recorded = tracking.recorded_datasets(run.run_id)
    assert len(MlflowClient(tracking_store).get_run(run.run_id).inputs.dataset_inputs) == 6
    assert {split: (r["name"], r["digest"], r["source_type"], r["source"])
            for split, r in recorded.items()} == {
        split: (spec, added.split_digest(split), "local", str(folder.resolve()))
        for split in SPLITS}


def test_idx_on_the_real_mnist_files(mnist_dir, tmp_path, tracking_store):
    spec = f"idx:{mnist_dir}"
    facts = data.load(spec, image_size=(28, 28), channels=1, batch_size=16,
                      plan=plan(limit=50)).facts
    assert (facts.name, facts.source, facts.local) == (spec, str(mnist_dir.resolve()), True)
    assert facts.sizes == {"train": 50, "validation": 50, "test": 50}
    assert facts.shape == (28, 28, 1) and facts.plan["limit"] == 50
    copy = shutil.copytree(mnist_dir, tmp_path / "mnist")  # names, sizes and times kept
    assert describe(f"idx:{copy}", sizes=facts.sizes).digest == facts.digest
    images = next(copy.glob("*images*"))
    os.utime(images, ns=(images.stat().st_atime_ns, images.stat().st_mtime_ns + 10**9))
    assert describe(f"idx:{copy}", sizes=facts.sizes).digest != facts.digest

    run = tracking.create_run(tracking.experiment_id("datasets"), name="idx")
    run.log_datasets(facts)
    datasets = by_split(MlflowClient(tracking_store).get_run(run.run_id))
    assert {split: (d.name, d.digest, json.loads(d.source)) for split, d in datasets.items()} \
        == {split: (spec, facts.split_digest(split), {"uri": str(mnist_dir.resolve())})
            for split in SPLITS}
    assert json.loads(datasets["test"].profile)["examples_per_split"] == facts.sizes


def test_derived_specs_carry_their_own_name_digest_and_shapes():
    base = describe("digits")
    moving, masks = describe("moving:digits"), describe("segmentation:digits")
    assert moving.name == "moving:digits" and moving.source == base.source
    assert moving.shape == (data.derived.FRAMES, 16, 16, 3) and moving.label_shape == ()
    assert masks.shape == (16, 16, 3) and masks.label_shape == (16, 16)
    assert len({base.digest, moving.digest, masks.digest}) == 3
    loaded = data.load("segmentation:digits", image_size=(8, 8), channels=1, batch_size=4,
                       plan=plan(limit=8)).facts
    assert (loaded.name, loaded.label_shape) == ("segmentation:digits", (8, 8))


def test_a_search_parent_and_its_trials_carry_their_dataset(tracking_store, tmp_path):
    config = apply_overrides(experiments.get("lecture_digits"), [
        "train.epochs=1", "data.limit=40", "runtime.verbose=0", "tune.max_trials=1",
        f"tune.directory={tmp_path / 'tuner'}"])
    result = run_search(config, verbose=0)
    client = MlflowClient(tracking_store)
    parent = by_split(client.get_run(result.parent_run_id))
    [trial] = client.search_runs([result.experiment_id], schema.kind_is(schema.TRIAL))
    trial_sets = by_split(trial)
    assert sorted(parent) == SPLITS and sorted(trial_sets) == ["train", "validation"]
    assert {d.name for d in parent.values()} == {"digits"}
    for split, dataset in trial_sets.items():
        assert (dataset.name, dataset.digest, dataset.source) == (
            "digits", parent[split].digest, parent[split].source)
        assert json.loads(dataset.profile)["num_examples"] == 40
    # the trial trains on the parent's source digest, so those inputs are its current ones
    digest = client.get_run(result.parent_run_id).data.tags[schema.DATASET_DIGEST_TAG]
    assert trial.data.tags[schema.DATASET_DIGEST_TAG] == digest
    assert sorted(tracking.recorded_datasets(trial.info.run_id)) == ["train", "validation"]


@pytest.mark.slow  # an Inception v3 run; train and search runs are checked in the fast suite
def test_a_transfer_run_and_its_phase_carry_their_dataset(flowers_dir, tmp_path, tracking_store,
                                                          capsys):
    folder = few_flowers(flowers_dir, tmp_path / "flowers", count=6)
    overrides = [f"data.dataset=folder:{folder}", "model.options.weights=none",
                 "data.image_size=75x75", "train.epochs=1", "train.batch_size=4", "data.limit=2",
                 f"runtime.output_dir={tmp_path}/runs", "runtime.verbose=0",
                 "transfer.run_eagerly=true", "transfer.fine_tune_epochs=0"]
    assert cli.main(["train", "--experiment", "transfer_flowers",
                     *[arg for item in overrides for arg in ("--set", item)]]) == 0
    run_id = re.search(r"MLflow run: (\w+)", capsys.readouterr().out)[1]
    client = MlflowClient(tracking_store)
    parent = by_split(client.get_run(run_id))
    [phase] = client.search_runs([client.get_run(run_id).info.experiment_id],
                                 schema.children_of(run_id))
    assert sorted(parent) == SPLITS and sorted(by_split(phase)) == ["train", "validation"]
    for split, dataset in by_split(phase).items():
        assert (dataset.name, dataset.digest) == (f"folder:{folder}", parent[split].digest)
        assert json.loads(dataset.source) == {"uri": str(folder.resolve())}
        assert json.loads(dataset.profile)["image_shape"] == [75, 75, 3]
