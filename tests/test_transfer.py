"""The Inception v3 transfer recipe on real flower photos at 75x75, trained once per session.

The base starts from a weights file the fixture saves (random initialisation, since
ImageNet weights cannot be downloaded offline), so "unchanged" means bit-identical to
that file. Phases run eagerly for one epoch over 16 images per split: graph tracing of
Inception v3 would cost more than the training itself.
"""

from __future__ import annotations

import hashlib
import json
import types
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from mlflow.tracking import MlflowClient

from cnnkeras import cli, predict, tracking
from cnnkeras.data import DataWarning
from cnnkeras.transfer import TransferConfig, load_splits, recipe, run_transfer
from cnnkeras.transfer import model as tmodel
from cnnkeras.transfer.saving import load_classifier, save_classifier, sidecar_path

FLOWERS = ("daisy", "dandelion", "rose", "sunflower", "tulip")
SIZE = 75
FLOWERS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "flowers"


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


def small_config(flowers, root: Path, **changes) -> TransferConfig:
    fields = dict(data=f"folder:{flowers}", weights=None, image_size=SIZE, epochs=1,
                  batch_size=8, limit=16, seed=3, output_dir=str(root / "runs"), verbose=0,
                  run_eagerly=True, experiment="transfer-test")
    return TransferConfig(**{**fields, **changes})


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    flowers = FLOWERS_DIR  # the conftest's flowers_dir, for a session-scoped fixture
    if not flowers.is_dir():
        pytest.skip(f"real data folder {flowers} is not present")
    root = tmp_path_factory.mktemp("transfer")
    keras.utils.set_random_seed(11)
    weights = root / "base.weights.h5"
    base = tmodel.load_base(None, SIZE)
    initial = fingerprints(base)
    base.save_weights(weights)
    snapshots = Snapshots()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)
        result = run_transfer(small_config(flowers, root, weights=str(weights)),
                              callbacks=[snapshots])
    return types.SimpleNamespace(result=result, taken=snapshots.taken, uri=uri, root=root,
                                 initial=initial, flowers=flowers)


def is_batchnorm(base, index):
    return isinstance(base.layers[index], keras.layers.BatchNormalization)


def test_both_phases_ran_one_epoch_each(trained):
    assert list(trained.result.histories) == ["head", "fine_tune"]
    assert [len(h["loss"]) for h in trained.result.histories.values()] == [1, 1]
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


def test_mlflow_run_holds_both_phases_test_metrics_and_artifacts(trained):
    client = MlflowClient(trained.uri)
    parent = client.get_run(trained.result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["image_size"] == str(SIZE)
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
    for name in ("plots/confusion_matrix.png", "plots/misclassified.png", "model/model.keras",
                 "model/model.classes.json", "evaluation/report.txt", "config.json"):
        assert (folder / name).stat().st_size > 0, name
    matrix = np.array(json.loads(
        (folder / "evaluation/confusion_matrix.json").read_text())["matrix"])
    assert matrix.sum() == 16 and metrics["test_accuracy"] == np.trace(matrix) / 16


def test_saved_model_reloads_in_safe_mode_and_predicts_flower_names(trained):
    path = trained.result.model_path
    model, names = load_classifier(path)  # keras.saving.load_model, safe_mode=True default
    assert names == FLOWERS
    assert json.loads(sidecar_path(path).read_text())["class_names"] == list(FLOWERS)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    photos = [sorted((trained.flowers / name).glob("*.jpg"))[0] for name in ("rose", "tulip")]
    results = predict.classify(model, names, photos, k=5)
    expected = trained.result.model.predict_on_batch(predict.batch_of(photos, (SIZE, SIZE)))
    for result, row in zip(results, expected, strict=True):
        assert {label for label, _ in result.top} == set(FLOWERS)
        probabilities = [p for _, p in result.top]
        assert probabilities == sorted(probabilities, reverse=True)
        np.testing.assert_allclose(probabilities, np.sort(row)[::-1], atol=1e-6)
    assert not list(path.parent.glob(".*tmp*"))


def test_bottleneck_features_are_cached_and_reproduce_the_model(trained, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)  # a store that already exists
    config = small_config(trained.flowers, tmp_path, bottlenecks=True, limit=8)
    model = trained.result.model
    splits = load_splits(config, 8)
    extractor = tmodel.feature_extractor(model)
    before = [w.copy() for w in model.get_layer("predictions").get_weights()]
    run = tracking.create_run(tracking.experiment_id("b"), name="b")
    try:
        with tracking.active(run):
            recipe.bottleneck_head(model, splits, config, run, callbacks=[])
        after = model.get_layer("predictions").get_weights()
        images = next(iter(splits.batches("validation")))[0]
        from_images = model.predict_on_batch(images)
    finally:
        model.get_layer("predictions").set_weights(before)  # the session's model, unchanged
    files = sorted(Path(config.output_dir, "bottlenecks").rglob("*.npz"))
    assert [f.name for f in files] == ["train.npz", "validation.npz"]
    with np.load(files[1]) as saved:
        features, labels = saved["features"], saved["labels"]
    assert features.shape == (8, tmodel.FEATURES) and labels.shape == (8,)
    assert not np.allclose(before[0], after[0])  # the head learned on the cached features
    head = tmodel.build_head(len(FLOWERS))
    head.set_weights(after)
    np.testing.assert_allclose(head(features, training=False), from_images, atol=1e-5)
    np.testing.assert_allclose(extractor(images, training=False), features, atol=1e-5)
    assert MlflowClient(trained.uri).get_run(run.run_id).data.params[
        "bottleneck_cache_hit"] == "False"


def test_tf_flowers_through_tfds_with_mock_data(tmp_path):
    config = TransferConfig(data="tf_flowers", image_size=SIZE, limit=6, seed=1)
    with tfds.testing.mock_data(num_examples=30):
        splits = load_splits(config, 3)
        images, labels = next(iter(splits.batches("train", shuffle=True)))
    assert splits.source.class_names == ("dandelion", "daisy", "tulips", "sunflowers", "roses")
    assert images.shape == (3, SIZE, SIZE, 3) and images.dtype.name == "float32"
    assert float(np.max(images)) > 1.0 and float(np.max(images)) <= 255.0  # pixels, not [0, 1]
    assert set(labels.numpy()) <= set(range(5))


@pytest.mark.parametrize("changes, message", [
    ({"image_size": 74}, "at least 75"),
    ({"dropout": 1.0}, "dropout"),
    ({"fine_tune_epochs": -1}, "fine_tune_epochs"),
    ({"validation_fraction": 0.0}, "validation_fraction"),
])
def test_bad_configs_are_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        TransferConfig(**changes)


def test_missing_weights_file_fails_before_any_data_is_read(tmp_path):
    config = TransferConfig(data=f"folder:{tmp_path / 'no-such-folder'}",
                            weights=str(tmp_path / "missing.weights.h5"), image_size=SIZE)
    with pytest.raises(ValueError, match="weights file .*missing.weights.h5.* does not exist"):
        run_transfer(config)


def test_unknown_fine_tune_layer_lists_the_blocks(trained):
    with pytest.raises(ValueError, match="mixed99.*mixed0, mixed1.*mixed10"):
        tmodel.check_layer(trained.result.model.get_layer("inception_v3"), "mixed99")


def copy_flowers(flowers, folder: Path, classes, count=3):
    for name in classes:
        (folder / name).mkdir(parents=True)
        for source in sorted((flowers / name).glob("*.jpg"))[:count]:
            (folder / name / source.name).write_bytes(source.read_bytes())


def test_one_class_folder_is_a_clear_error(tmp_path, flowers_dir):
    copy_flowers(flowers_dir, tmp_path, ["daisy"])
    with pytest.raises(ValueError, match="at least two classes; found 1 \\(daisy\\)"):
        load_splits(TransferConfig(data=f"folder:{tmp_path}", image_size=SIZE), 4)


def test_corrupt_image_is_named_and_skipped(tmp_path, flowers_dir):
    copy_flowers(flowers_dir, tmp_path, ["daisy", "tulip"], count=5)
    (tmp_path / "tulip" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    config = TransferConfig(data=f"folder:{tmp_path}", image_size=SIZE,
                            validation_fraction=0.2, test_fraction=0.2)
    with pytest.warns(DataWarning, match="broken.jpg"):
        splits = load_splits(config, 4)
    assert sum(splits.source.sizes.values()) == 10
    assert splits.source.skipped_files == (str(tmp_path / "tulip" / "broken.jpg"),)


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
    (["transfer", "--image-size", "60"], "at least 75"),
    (["transfer", "--weights", "nowhere.h5"], "weights file 'nowhere.h5' does not exist"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys, tracking_store):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_of_another_model_is_a_clear_error(tmp_path):
    other = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(other)
    with pytest.raises(ValueError, match="could not load the Inception v3 base weights"):
        tmodel.load_base(str(other), SIZE)


def test_offline_imagenet_download_is_one_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="could not fetch the ImageNet weights.*--weights"):
            tmodel.load_base("imagenet", SIZE)
