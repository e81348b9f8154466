"""The registered transfer_flowers experiment on real flower photos at 75x75, trained once per
session through ``train_experiment`` (the `cnnkeras train` path).

The base starts from a weights file the fixture saves (random initialisation, since
ImageNet weights cannot be downloaded offline), so "unchanged" means bit-identical to
that file. Phases run eagerly (``transfer.run_eagerly``) for one epoch over 8 images
per split: graph tracing of Inception v3 would cost more than the training itself.
"""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from mlflow.tracking import MlflowClient

import cnnkeras
import experiments
from cnnkeras import cli, predict, tracking
from cnnkeras.config import apply_overrides, to_dict
from cnnkeras.data import DataWarning
from cnnkeras.training import train_experiment
from cnnkeras.transfer import evaluation, load_datasets, recipe
from cnnkeras.transfer import model as tmodel
from cnnkeras.transfer.saving import load_classifier, save_classifier

FLOWERS = ("daisy", "dandelion", "rose", "sunflower", "tulip")
SIZE = 75
FLOWERS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "flowers"


def tiny(flowers, root: Path, *extra: str) -> list:
    """Overrides of transfer_flowers for a run of seconds on the real flowers."""
    return [f"data.dataset=folder:{flowers}", "model.options.weights=none",
            f"data.image_size={SIZE}x{SIZE}", "train.epochs=1", "train.batch_size=8",
            "data.limit=8", "data.seed=3", "runtime.seed=3", f"runtime.output_dir={root}/runs",
            "runtime.verbose=0", "transfer.run_eagerly=true",
            "runtime.mlflow_experiment=transfer-test", *extra]


def sets(overrides) -> list:
    return [arg for item in overrides for arg in ("--set", item)]


def fingerprints(base: keras.Model) -> dict:
    """``{(layer index, weight position): sha1 of its bytes}`` for every variable.

    Indices, not names: Keras numbers auto-named layers per process (conv2d_94 ...).
    """
    return {(index, position): hashlib.sha1(np.asarray(w).tobytes()).hexdigest()
            for index, layer in enumerate(base.layers)
            for position, w in enumerate(layer.weights)}


class Snapshots(keras.callbacks.Callback):
    """Fingerprints of the base, and the head's weights, when each ``fit`` begins and ends."""

    def __init__(self):
        super().__init__()
        self.taken = []

    def record(self):
        self.taken.append({"base": fingerprints(self.model.get_layer("inception_v3")),
                           "head": [np.array(w) for w in
                                    self.model.get_layer("predictions").get_weights()]})

    def on_train_begin(self, logs=None):
        self.record()

    def on_train_end(self, logs=None):
        self.record()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    flowers = FLOWERS_DIR  # the conftest's flowers_dir, for a session-scoped fixture
    if not flowers.is_dir():
        pytest.skip(f"real data folder {flowers} is not present")
    root = tmp_path_factory.mktemp("transfer")
    keras.utils.set_random_seed(11)
    weights = root / "base.weights.h5"
    base = cnnkeras.build("inception_v3", input_shape=(SIZE, SIZE, 3), num_classes=5,
                          frozen_base=True).get_layer("inception_v3")
    initial = fingerprints(base)
    base.save_weights(weights)
    config = apply_overrides(experiments.get("transfer_flowers"),
                             tiny(flowers, root, f"model.options.weights={weights}"))
    snapshots = Snapshots()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)
        result = train_experiment(config, callbacks=[snapshots])
    return types.SimpleNamespace(result=result, taken=snapshots.taken, uri=uri, root=root,
                                 initial=initial, flowers=flowers, config=config)


def is_batchnorm(base, index):
    return isinstance(base.layers[index], keras.layers.BatchNormalization)


def test_both_phases_ran_one_epoch_each(trained):
    assert list(trained.result.histories) == ["head", "fine_tune"]
    assert [len(h["loss"]) for h in trained.result.histories.values()] == [1, 1]
    assert len(trained.result.history["loss"]) == 2  # both phases' epochs, in order
    assert len(trained.taken) == 4  # begin and end of each phase's fit


def test_phase1_leaves_every_base_weight_and_bn_statistic_bit_identical(trained):
    begin, end = trained.taken[0], trained.taken[1]
    assert begin["base"] == trained.initial  # the weights file, loaded exactly
    assert end["base"] == begin["base"]
    base = trained.result.model.get_layer("inception_v3")
    moving = [k for k in begin["base"] if is_batchnorm(base, k[0])]
    assert len(moving) == 94 * 3  # beta, moving mean, moving variance (no gamma in v3)
    assert not np.allclose(begin["head"][0], end["head"][0])  # the head did train


def test_phase2_trains_above_mixed7_only_and_never_batchnorm(trained):
    begin, end = trained.taken[2], trained.taken[3]
    base = trained.result.model.get_layer("inception_v3")
    start = [layer.name for layer in base.layers].index("mixed7")
    changed = {k for k in begin["base"] if begin["base"][k] != end["base"][k]}
    above = {k for k in begin["base"] if k[0] > start and not is_batchnorm(base, k[0])}
    assert changed == above
    assert len(above) == 6 + 9 + 9  # the conv kernels of blocks mixed8, mixed9, mixed10
    assert all(isinstance(base.layers[k[0]], keras.layers.Conv2D) for k in above)
    assert end["base"] != trained.initial
    assert {k: v for k, v in end["base"].items() if is_batchnorm(base, k[0])} == \
        {k: v for k, v in trained.initial.items() if is_batchnorm(base, k[0])}


def test_mlflow_run_holds_config_both_phases_test_metrics_and_artifacts(trained):
    client = MlflowClient(trained.uri)
    parent = client.get_run(trained.result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["cnnkeras.kind"] == "transfer"
    params = parent.data.params
    assert params["data.image_size"] == f"{SIZE},{SIZE}" and params["transfer.bottlenecks"] == \
        "False" and params["model.options.frozen_base"] == "True"
    assert int(params["data.size.test"]) == 8 and int(params["parameters"]) == 21_813_029
    children = {r.data.tags["cnnkeras.phase"]: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.`{tracking.PARENT_TAG}` = '{parent.info.run_id}'")}
    assert set(children) == {"head", "fine_tune"}
    assert {k: r.info.run_id for k, r in children.items()} == trained.result.phase_run_ids
    assert float(children["fine_tune"].data.params["learning_rate"]) == pytest.approx(1e-4)
    for child in children.values():
        assert child.info.status == "FINISHED"
        assert {"loss", "val_accuracy", "images_per_second"} <= set(child.data.metrics)
    metrics = parent.data.metrics
    assert {f"test_{m}_{c}" for m in ("precision", "recall") for c in FLOWERS} <= set(metrics)
    folder = Path(client.download_artifacts(parent.info.run_id, "", str(trained.root / "dl")))
    for name in ("plots/confusion_matrix.png", "plots/misclassified.png",
                 "evaluation/report.txt", "model_summary.txt"):
        assert (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "config.json").read_text()) == json.loads(
        json.dumps(to_dict(trained.config), default=list))
    matrix = np.array(json.loads(
        (folder / "evaluation/confusion_matrix.json").read_text())["matrix"])
    assert matrix.sum() == 8 and metrics["test_accuracy"] == np.trace(matrix) / 8
    assert trained.result.test_metrics["accuracy"] == metrics["test_accuracy"]


def test_the_model_is_logged_registered_reloads_in_safe_mode_and_predicts_flower_names(
        trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    result = trained.result
    assert result.registered == "models:/transfer-test/1"  # the run's experiment names it
    version = MlflowClient(trained.uri).get_model_version("transfer-test", "1")
    assert version.run_id == result.run_id
    assert float(version.tags["test_accuracy"]) == pytest.approx(
        result.test_metrics["accuracy"], abs=1e-4)
    assert not list((trained.root / "runs").rglob("*.keras"))  # MLflow's copy is the only one
    meta = mlflow.models.get_model_info(result.registered).metadata
    assert meta["class_names"] == list(FLOWERS) and meta["input_range"] == [0, 255]
    model = mlflow.keras.load_model(result.registered)  # keras.saving.load_model, safe mode
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    assert [layer.name for layer in model.layers[:2]] == ["image", "pixels"]
    photos = [sorted((trained.flowers / name).glob("*.jpg"))[0] for name in ("rose", "tulip")]
    results = predict.predict_images(result.registered, photos, k=5)
    expected = trained.result.model.predict_on_batch(  # raw pixels: the model scales them
        predict.batch_of(photos, (SIZE, SIZE)))
    for result, row in zip(results, expected, strict=True):
        assert {label for label, _ in result.top} == set(FLOWERS)
        probabilities = [p for _, p in result.top]
        assert probabilities == sorted(probabilities, reverse=True)
        np.testing.assert_allclose(probabilities, np.sort(row)[::-1], atol=1e-6)


def run_bottleneck_head(trained, config, datasets) -> str:
    run = tracking.create_run(tracking.experiment_id("b"), name="b")
    ctx = recipe.Context(trained.result.model, datasets, config, 8, run, ())
    with tracking.active(run):
        recipe.bottleneck_head(ctx, run)
    return MlflowClient(trained.uri).get_run(run.run_id).data.params["bottleneck_cache_hit"]


def cached_features(output_dir: Path) -> tuple:
    """The cached validation features and labels; exactly one cache, of train and validation."""
    files = sorted(Path(output_dir, "transfer_flowers", "bottlenecks").rglob("*.npz"))
    assert [f.name for f in files] == ["train.npz", "validation.npz"]
    with np.load(files[1]) as saved:
        return saved["features"], saved["labels"]


def test_bottleneck_features_are_cached_and_reproduce_the_model(trained, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)  # a store that already exists
    config = apply_overrides(trained.config, ["transfer.bottlenecks=true", "data.limit=8",
                                              f"runtime.output_dir={tmp_path}"])
    model = trained.result.model
    datasets = load_datasets(config, 8)
    before = [w.copy() for w in model.get_layer("predictions").get_weights()]
    try:
        hits = [run_bottleneck_head(trained, config, datasets) for _ in range(2)]
        after = model.get_layer("predictions").get_weights()
        images = next(iter(datasets.validation))[0]
        from_images = model.predict_on_batch(images)
        head = tmodel.head_of(model)  # shares the trained head layers with the model
        from_features = head(cached_features(tmp_path)[0], training=False)
    finally:
        model.get_layer("predictions").set_weights(before)  # the session's model, unchanged
    assert hits == ["False", "True"]
    features, labels = cached_features(tmp_path)
    assert features.shape == (8, 2048) and labels.shape == (8,)
    assert not np.allclose(before[0], after[0])  # the head learned on the cached features
    np.testing.assert_allclose(from_features, from_images, atol=1e-5)
    extractor = tmodel.feature_extractor(model)
    np.testing.assert_allclose(extractor(images, training=False), features, atol=1e-5)


def test_a_cosine_schedule_anneals_the_phases_rate(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    config = apply_overrides(trained.config, [
        "transfer.bottlenecks=true", "data.limit=8", f"runtime.output_dir={tmp_path}",
        "train.epochs=2", "train.lr_schedule=cosine"])
    head = trained.result.model.get_layer("predictions")
    before = [w.copy() for w in head.get_weights()]
    run = tracking.create_run(tracking.experiment_id("b"), name="cosine")
    try:
        with tracking.active(run):
            recipe.bottleneck_head(recipe.Context(trained.result.model,
                                                  load_datasets(config, 8), config, 8, run, ()),
                                   run)
    finally:
        head.set_weights(before)  # the session's model, unchanged
    rate = config.train.learning_rate
    assert tracking.metric_history(run.run_id, "learning_rate") == [
        (0, pytest.approx(rate)), (1, pytest.approx(rate / 2))]


def test_tf_flowers_through_tfds_with_mock_data_and_the_one_pipeline():
    config = apply_overrides(experiments.get("transfer_flowers"),
                             [f"data.image_size={SIZE}x{SIZE}", "data.limit=6", "data.seed=1"])
    with tfds.testing.mock_data(num_examples=30):
        datasets = load_datasets(config, 3)
        images, labels = next(iter(datasets.train))
    assert datasets.class_names == ("dandelion", "daisy", "tulips", "sunflowers", "roses")
    assert images.shape == (3, SIZE, SIZE, 3) and images.dtype.name == "float32"
    assert 0.0 <= float(np.min(images)) and 1.0 < float(np.max(images)) <= 255.0  # raw pixels
    assert set(labels.numpy()) <= set(range(5))


def test_misclassified_images_are_the_pipelines_pixels_as_uint8():
    images = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3) * 2  # 0..190
    dataset = tf.data.Dataset.from_tensor_slices((images, np.array([1, 0]))).batch(2)
    always_first = lambda batch: np.tile([[0.9, 0.1]], (len(batch), 1))  # noqa: E731
    tested = evaluation.evaluate(always_first, dataset, ("a", "b"))
    assert tested.wrong_indices.tolist() == [0]
    assert tested.wrong_images.dtype == np.uint8
    np.testing.assert_array_equal(tested.wrong_images[0], images[0].astype(np.uint8))


def test_transfer_section_is_only_where_an_experiment_has_it():
    assert "transfer" not in to_dict(experiments.get("lecture_flowers"))  # fingerprints kept
    assert to_dict(experiments.get("transfer_flowers"))["transfer"]["fine_tune_from"] == "mixed7"
    with pytest.raises(ValueError, match="lecture_digits has no transfer section"):
        apply_overrides(experiments.get("lecture_digits"), ["transfer.bottlenecks=true"])


@pytest.mark.parametrize("override, message", [
    ("data.image_size=74x74", "at least 75x75"),
    ("model.options.dropout=1.0", "dropout must be a number in \\[0, 1\\)"),
    ("model.options.colour=3", "inception_v3 has no option\\(s\\) colour. Valid options: "),
    ("model.options.frozen_base=False", "needs a model with a nested, frozen base"),
    ("model.options.frozen_base=yes", "frozen_base must be True or False. Received: "),
    ("transfer.fine_tune_from=mixed99", "mixed99.*mixed0, mixed1.*mixed10"),
    ("model.options.weights=missing.weights.h5", "weights file 'missing.weights.h5' does not"),
])
def test_bad_config_fails_before_any_data_run_or_folder(override, message, tmp_path,
                                                         tracking_store):
    config = apply_overrides(experiments.get("transfer_flowers"), [
        f"data.dataset=folder:{tmp_path / 'no-such-folder'}", "model.options.weights=none",
        "model.options.augment=False", override])
    with pytest.raises(ValueError, match=message) as caught:
        train_experiment(config)
    assert len(str(caught.value).splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no runs/ folder


@pytest.mark.parametrize("override, message", [
    ("transfer.fine_tune_epochs=-1", "transfer.fine_tune_epochs must be >= 0"),
    ("transfer.fine_tune_factor=0", "transfer.fine_tune_factor must be positive"),
    ("transfer.frozen=true", "Valid keys in transfer: transfer.fine_tune_epochs"),
])
def test_bad_transfer_section_is_refused_when_parsed(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(experiments.get("transfer_flowers"), [override])


def copy_flowers(flowers, folder: Path, classes, count=3):
    for name in classes:
        (folder / name).mkdir(parents=True)
        for source in sorted((flowers / name).glob("*.jpg"))[:count]:
            (folder / name / source.name).write_bytes(source.read_bytes())


def test_one_class_folder_is_a_clear_error(tmp_path, flowers_dir):
    copy_flowers(flowers_dir, tmp_path, ["daisy"])
    config = apply_overrides(experiments.get("transfer_flowers"),
                             [f"data.dataset=folder:{tmp_path}"])
    with pytest.raises(ValueError, match="at least two classes; found 1 \\(daisy\\)"):
        load_datasets(config, 4)


def test_corrupt_image_is_named_and_skipped(tmp_path, flowers_dir):
    copy_flowers(flowers_dir, tmp_path, ["daisy", "tulip"], count=5)
    (tmp_path / "tulip" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    config = apply_overrides(experiments.get("transfer_flowers"), [
        f"data.dataset=folder:{tmp_path}", f"data.image_size={SIZE}x{SIZE}",
        "data.validation_fraction=0.2", "data.test_fraction=0.2"])
    with pytest.warns(DataWarning, match="broken.jpg"):
        datasets = load_datasets(config, 4)
    assert sum(datasets.sizes.values()) == 10
    assert datasets.skipped_files == (str(tmp_path / "tulip" / "broken.jpg"),)


def test_failed_save_leaves_neither_a_half_written_model_nor_a_clobbered_one(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    path = save_classifier(model, tmp_path / "m.keras", ["a", "b"])
    good = path.read_bytes()

    class Broken(keras.Model):
        def save(self, filepath, *args, **kwargs):
            Path(filepath).write_bytes(b"partial")
            raise OSError("disk full")

    broken = Broken(model.inputs, model.outputs)
    with pytest.raises(OSError, match="disk full"):
        save_classifier(broken, path, ["x", "y"])
    assert path.read_bytes() == good
    assert load_classifier(path)[1] == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.classes.json", "m.keras"]


@pytest.mark.parametrize("argv, message", [
    (["transfer", "--image-size", "60"], "at least 75x75"),
    (["transfer", "--weights", "nowhere.h5"], "weights file 'nowhere.h5' does not exist"),
    (["transfer", "--fine-tune-epochs", "-1"], "transfer.fine_tune_epochs must be >= 0"),
    (["transfer", "--set", "model.options.colour=3"], "has no option(s) colour"),
    (["train", "--experiment", "transfer_flowers", "--set", "data.image_size=60x60"],
     "at least 75x75"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys, tracking_store, tmp_path):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no runs/ folder


class Captured(Exception):
    """Raised by a stand-in ``train_experiment`` with the config it was handed."""


def resolved(argv, monkeypatch):
    def capture(config, strategy=None, **kwargs):
        raise Captured(config)

    monkeypatch.setattr("cnnkeras.training.train_experiment", capture)
    with pytest.raises(Captured) as caught:
        cli.main(argv)
    return caught.value.args[0]


@pytest.mark.parametrize("flags, overrides", [
    (["--data", "folder:photos", "--weights", "none", "--image-size", "96", "--epochs", "3",
      "--batch-size", "16"],  # what `make transfer` passes
     ["data.dataset=folder:photos", "model.options.weights=none", "data.image_size=96x96",
      "train.epochs=3", "train.batch_size=16"]),
    (["--data-dir", "tfds", "--fine-tune-epochs", "0", "--learning-rate", "0.01",
      "--fine-tune-from", "mixed8", "--bottlenecks", "--no-augment", "--limit", "20", "--seed",
      "5", "--output-dir", "out", "--experiment", "mine", "--strategy", "default",
      "--set", "transfer.run_eagerly=true"],
     ["data.data_dir=tfds", "transfer.fine_tune_epochs=0", "train.learning_rate=0.01",
      "transfer.fine_tune_from=mixed8", "transfer.bottlenecks=true",
      "model.options.augment=False", "data.limit=20", "data.seed=5", "runtime.seed=5",
      "runtime.output_dir=out", "runtime.mlflow_experiment=mine",
      "runtime.strategy=default", "transfer.run_eagerly=true"]),
])
def test_transfer_short_form_is_train_transfer_flowers_with_sets(flags, overrides, monkeypatch):
    short = resolved(["transfer", *flags], monkeypatch)
    long = resolved(["train", "--experiment", "transfer_flowers", *sets(overrides)], monkeypatch)
    assert short == long
    assert short == apply_overrides(experiments.get("transfer_flowers"), overrides)
    assert short != experiments.get("transfer_flowers")


@pytest.mark.slow  # a CLI Inception run; the transfer fixture's run stays fast
def test_train_transfer_flowers_trains_a_tiny_step_on_real_flowers(flowers_dir, tmp_path,
                                                                    tracking_store, capsys):
    overrides = tiny(flowers_dir, tmp_path, "data.limit=4", "train.batch_size=4",
                     "transfer.fine_tune_epochs=0")  # phase 1 only: the fixture runs both
    assert cli.main(["train", "--experiment", "transfer_flowers", *sets(overrides)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("test: loss ") and ", accuracy " in lines[0]
    run_id = lines[1].removeprefix("MLflow run: ")
    assert lines[2].startswith(f"model: runs:/{run_id}/model (models:/m-")
    assert lines[3] == "registered: models:/transfer-test/1"
    meta = mlflow.models.get_model_info(f"runs:/{run_id}/model").metadata
    assert meta["class_names"] == list(FLOWERS)
    client = MlflowClient(tracking_store)
    run = client.get_run(run_id)
    assert run.data.tags["cnnkeras.kind"] == "transfer" and run.info.status == "FINISHED"
    assert run.data.params["model.architecture"] == "inception_v3"
    phases = client.search_runs([run.info.experiment_id],
                                f"tags.`{tracking.PARENT_TAG}` = '{run_id}'")
    assert [r.data.tags["cnnkeras.phase"] for r in phases] == ["head"]
