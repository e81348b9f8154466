"""Every model command takes every model: a `.keras` path or an MLflow URI.

A tiny lecture CNN is trained one step on real MNIST digits, logged as the MLflow
model of a run (`cnnkeras.tracking.models.log_model`), registered as `digits` version 1
and saved as `digits.keras` with its `.classes.json`; `predict`, `inspect`, `filters`
and `feature-maps` then take it as `runs:/<run id>/model`, `models:/digits/1`,
`models:/digits/latest`, `models:/<model id>` and the path. The same layers without
their `pixels` scaling, logged with the range [0, 1] as models were before the scaling
moved into the model, are still fed [0, 1]. A transfer-style model
(Inception v3 nested as the layer `inception_v3`) shows the nested layers' rows,
filters and feature maps. Subprocesses (`run_cli`) are the commands as a user types
them; the cheaper cells of the matrix run `cnnkeras.cli.main` in this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import cnnkeras
from cnnkeras import cli, predict, tracking
from cnnkeras.data import idx
from cnnkeras.tracking import models
from cnnkeras.transfer.saving import save_classifier

CLASSES = tuple(f"digit {i}" for i in range(10))
FLOWERS = ("daisy", "dandelion", "rose", "sunflower", "tulip")
REFS = ("runs", "version", "latest", "keras")  # the references every command is run with
# In the fast suite the commands meet two of them in this process and `predict` meets the
# registered version through the real CLI as well; all of them with `pytest -m slow` (a
# subprocess costs 8-28 s on two cores).
FAST = ("version", "keras")


def some_slow(kinds, fast=FAST):
    return [kind if kind in fast else pytest.param(kind, marks=pytest.mark.slow)
            for kind in kinds]


@dataclass(frozen=True)
class Logged:
    """The logged digits model, its store and its references (``refs[kind]``)."""

    folder: Path
    uri: str  # the tracking store
    model: keras.Model
    refs: dict
    empty_run: str  # a run that logged no model
    digit: Path  # a real MNIST test image as a PNG
    digit_pixels: np.ndarray  # (28, 28) uint8
    older: keras.Model  # the model without its pixels layer, logged as taking [0, 1]

    @property
    def env(self) -> dict:
        return {"MLFLOW_TRACKING_URI": self.uri}


def log_digits(mnist_dir: Path, folder: Path) -> Logged:
    images, labels = idx.read_idx_pair(*idx.find_idx_pairs(mnist_dir)["t10k"])
    pixels = images[:32, ..., None].astype("float32")  # [0, 255], as cnnkeras.data gives them
    keras.utils.set_random_seed(0)
    model = cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10,
                           filters=(4, 8), dense_units=8)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(pixels, labels[:32], batch_size=32, epochs=1, verbose=0)  # one step
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        run = tracking.create_run(tracking.experiment_id("refs"), name="digits")
        model_uri = models.log_model(run, model, class_names=CLASSES, input_example=pixels[:2],
                                     input_range=(0, 255))
        version = models.register(model_uri, "digits", run_id=run.run_id)
        empty = tracking.create_run(tracking.experiment_id("refs"), name="no model")
        older = keras.Model(model.get_layer("pixels").output, model.outputs, name="older")
        before = tracking.create_run(tracking.experiment_id("refs"), name="older")
        models.log_model(before, older, class_names=CLASSES, input_example=pixels[:2] / 255,
                         input_range=(0, 1))
    path = save_classifier(model, folder / "digits.keras", CLASSES)
    digit = folder / "digit.png"
    Image.fromarray(images[0]).save(digit)
    refs = {"runs": f"runs:/{run.run_id}/model", "version": version,
            "latest": "models:/digits/latest", "id": model_uri, "keras": str(path),
            "older": f"runs:/{before.run_id}/model"}
    return Logged(folder, uri, model, refs, empty.run_id, digit, images[0], older)


@pytest.fixture(scope="module")
def _built() -> dict:
    return {}


@pytest.fixture
def logged(_built, mnist_dir, tmp_path_factory) -> Logged:
    """Built once per module (the data folder comes from a per-test fixture)."""
    if "logged" not in _built:
        _built["logged"] = log_digits(mnist_dir, tmp_path_factory.mktemp("refs"))
    return _built["logged"]


@pytest.fixture
def photos(flowers_dir) -> list:
    """Two real flower JPEGs (128x128 RGB)."""
    return [sorted((flowers_dir / name).glob("*.jpg"))[0] for name in ("daisy", "rose")]


def gray_28(path: Path) -> np.ndarray:
    """A picture as a 1-channel 28x28 model takes it, made by PIL (not the code under test)."""
    with Image.open(path) as image:
        small = image.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype="float32")[..., None]


def printed(stdout: str) -> dict:
    """``{image: {label: probability}}`` from predict's output."""
    found, current = {}, None
    for line in stdout.splitlines():
        if not line.startswith("  "):
            current = found.setdefault(line, {})
        else:
            _, *label, probability = line.split()
            current[" ".join(label)] = float(probability)
    return found


@pytest.mark.parametrize("kind", some_slow(REFS, fast=("version",)))
def test_predict_feeds_photos_and_digits_as_the_model_takes_them(logged, photos, run_cli, kind):
    """RGB photos become grayscale 28x28 in [0, 255], as the logged metadata says."""
    done = run_cli("predict", logged.refs[kind], *map(str, photos), str(logged.digit),
                   "--top-k", "10", cwd=logged.folder, env=logged.env)
    assert done.returncode == 0, done.stderr
    check_predictions(done.stdout, logged, photos)


def test_predict_feeds_a_keras_file_the_same_in_this_process(logged, photos, monkeypatch,
                                                             capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    capsys.readouterr()
    assert cli.main(["predict", logged.refs["keras"], *map(str, photos), str(logged.digit),
                     "--top-k", "10"]) == 0
    check_predictions(capsys.readouterr().out, logged, photos)


def check_predictions(stdout: str, logged: Logged, photos) -> None:
    """Each image's ten classes, ranked, with the probabilities the model gives it."""
    answers = printed(stdout)
    assert list(answers) == [*map(str, photos), str(logged.digit)]
    pixels = np.stack([gray_28(p) for p in photos] + [logged.digit_pixels[..., None]])
    expected = logged.model.predict(pixels, verbose=0)
    wrong_range = logged.model.predict(pixels / 255.0, verbose=0)
    for (image, answer), row, wrong in zip(answers.items(), expected, wrong_range, strict=True):
        assert set(answer) == set(CLASSES), image
        got = np.array([answer[name] for name in CLASSES])
        np.testing.assert_allclose(got, row, atol=1.5e-4)
        assert np.abs(got - wrong).max() > 0.01  # the range matters for this model
        assert list(answer) == [CLASSES[i] for i in np.argsort(-got, kind="stable")]


def test_load_gives_the_model_its_class_names_range_and_source(logged, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    pixels = logged.digit_pixels[None, ..., None].astype("float32")
    expected = logged.model.predict(pixels, verbose=0)
    for kind, ref in logged.refs.items():
        loaded = models.load(ref)
        low, high = (0, 1) if kind == "older" else (0, 255)
        assert (loaded.class_names, loaded.input_range, loaded.source) == (CLASSES, (low, high),
                                                                           ref)
        np.testing.assert_allclose(loaded.model.predict(pixels * (high / 255), verbose=0),
                                   expected, rtol=1e-5)
        assert isinstance(cnnkeras.load_model(ref), keras.Model)


def test_a_logged_model_pins_the_installed_packages_without_mlflows_check(tmp_path,
                                                                          monkeypatch):
    """The pins are the installed versions, read as the model is logged, so MLflow's check
    of them against the installed packages (which maps every installed distribution
    first) does not run then; it is back in place afterwards."""
    from importlib import metadata

    import mlflow
    from mlflow.utils import environment

    checked = []
    monkeypatch.setattr(environment, "warn_dependency_requirement_mismatches", checked.append)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = cnnkeras.build("lecture_cnn", input_shape=(28, 28, 1), num_classes=10,
                           filters=(4, 8), dense_units=8)
    run = tracking.create_run(tracking.experiment_id("pins"), name="pins")
    uri = models.log_model(run, model, class_names=CLASSES,
                           input_example=np.zeros((1, 28, 28, 1)))
    assert checked == []
    assert environment.warn_dependency_requirement_mismatches == checked.append
    pinned = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
    for name in ("tensorflow", "keras", "mlflow", "numpy", "pandas"):
        assert f"{name}=={metadata.version(name)}" in pinned


def test_a_model_logged_as_taking_0_1_is_still_predicted_with_0_1(logged, photos, monkeypatch):
    """An older model (no pixels layer, metadata [0, 1]) answers as the model of today does."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    images = [*photos, logged.digit]
    older = predict.predict_images(logged.refs["older"], images, k=10)
    today = predict.predict_images(logged.refs["runs"], images, k=10)
    for then, now in zip(older, today, strict=True):
        assert [label for label, _ in then.top] == [label for label, _ in now.top]
        np.testing.assert_allclose([p for _, p in then.top], [p for _, p in now.top],
                                   rtol=1e-5, atol=1e-7)
    pixels = np.stack([gray_28(p) for p in photos] + [logged.digit_pixels[..., None]])
    np.testing.assert_allclose([[dict(r.top)[name] for name in CLASSES] for r in older],
                               logged.older.predict(pixels / 255, verbose=0), atol=1.5e-4)


LECTURE_ROW = ["block1_conv", "Conv2D", "3x3", "1", "valid", "26x26x4", "40", "3", "1"]


def check_inspect(stdout: str, model) -> None:
    lines = stdout.splitlines()
    assert next(line for line in lines if line.startswith("block1_conv")).split()[:9] == \
        LECTURE_ROW
    assert f"total {model.count_params():,}" in next(line for line in lines
                                                     if line.startswith("parameters:"))


def check_filters(stdout: str, png: Path) -> None:
    assert stdout.splitlines() == ["lecture_cnn: block1_conv, 4 filters 3x3", str(png)]
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 100


def check_feature_maps(stdout: str, png: Path) -> None:
    assert stdout.splitlines() == ["lecture_cnn: feature maps of block1_conv, block2_conv",
                                   str(png)]
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 100


@pytest.mark.parametrize("kind", some_slow(["id", *REFS]))
def test_inspect_filters_and_feature_maps_take_every_reference(logged, kind, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    ref = logged.refs[kind]
    assert cli.main(["inspect", ref]) == 0
    check_inspect(capsys.readouterr().out, logged.model)
    assert cli.main(["filters", ref, "--output", str(tmp_path / "f.png")]) == 0
    check_filters(capsys.readouterr().out, tmp_path / "f.png")
    assert cli.main(["feature-maps", ref, "--image", str(logged.digit), "--output",
                     str(tmp_path / "m.png")]) == 0
    check_feature_maps(capsys.readouterr().out, tmp_path / "m.png")


@pytest.mark.parametrize("command, kind", [  # a process each; the fast suite runs these
    # commands in this process on every reference, and predict on a URI in a process
    pytest.param("inspect", "version", marks=pytest.mark.slow),
    pytest.param("filters", "runs", marks=pytest.mark.slow),
    pytest.param("feature-maps", "latest", marks=pytest.mark.slow)])
def test_each_command_takes_a_uri_as_a_user_types_it(logged, run_cli, tmp_path, command,
                                                     kind):
    png = tmp_path / "out.png"
    extra = {"inspect": [], "filters": ["--output", str(png)],
             "feature-maps": ["--image", str(logged.digit), "--output", str(png)]}[command]
    done = run_cli(command, logged.refs[kind], *extra, cwd=logged.folder, env=logged.env)
    assert done.returncode == 0, done.stderr
    if command == "inspect":
        check_inspect(done.stdout, logged.model)
    else:
        (check_filters if command == "filters" else check_feature_maps)(done.stdout, png)


# --- a transfer model: Inception v3 nested as the layer "inception_v3" ------------------------

@dataclass(frozen=True)
class Transfer:
    path: Path
    model: keras.Model
    convs: tuple  # the base's convolution layers' names, in order


@pytest.fixture(scope="module")
def transfer(tmp_path_factory) -> Transfer:
    keras.utils.set_random_seed(0)
    model = cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=5,
                           weights=None, frozen_base=True)
    path = save_classifier(model, tmp_path_factory.mktemp("transfer") / "flowers.keras",
                           FLOWERS)  # takes [0, 255], the range save_classifier records
    convs = tuple(layer.name for layer in model.get_layer("inception_v3").layers
                  if isinstance(layer, keras.layers.Conv2D))
    return Transfer(path, model, convs)


def test_inspect_lists_the_nested_base_layer_by_layer(transfer, capsys):
    # in this process: test_each_command_takes_a_uri_as_a_user_types_it runs inspect as one
    assert cli.main(["inspect", str(transfer.path)]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()
            if line}
    first = f"inception_v3/{transfer.convs[0]}"
    assert rows[first][:8] == ["Conv2D", "3x3", "2", "valid", "37x37x32", "864", "3", "2"]
    assert rows["inception_v3/mixed10"][:2] == ["Concatenate", "1x1x2048"]
    assert "inception_v3" not in rows  # the base's own layers stand in for it
    assert sum(1 for name in rows if name.startswith("inception_v3/")) > 300
    assert rows["parameters:"][-1] == f"{transfer.model.count_params():,}"


def test_filters_draw_the_first_convolution_inside_the_base(transfer, tmp_path, capsys):
    assert cli.main(["filters", str(transfer.path), "--output", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 0
    assert capsys.readouterr().out.splitlines() == [
        f"inception_v3_transfer: inception_v3/{transfer.convs[0]}, 32 filters 3x3",
        str(tmp_path / "f.png")]


@pytest.mark.parametrize("name", ["path", "bare"])
def test_filters_layer_option_takes_a_nested_name(transfer, tmp_path, capsys, name):
    conv = transfer.convs[3]  # conv 80@1x1
    layer = f"inception_v3/{conv}" if name == "path" else conv
    assert cli.main(["filters", str(transfer.path), "--layer", layer, "--output",
                     str(tmp_path / "f.png")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        f"inception_v3_transfer: inception_v3/{conv}, 80 filters 1x1"


@pytest.mark.slow  # a process; test_filters_layer_option_takes_a_nested_name stays fast
def test_feature_maps_take_nested_layer_names(transfer, photos, run_cli, tmp_path):
    done = run_cli("feature-maps", str(transfer.path), "--image", str(photos[0]), "--layers",
                   f"inception_v3/{transfer.convs[0]}", "mixed0", "--output",
                   str(tmp_path / "m.png"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"inception_v3_transfer: feature maps of inception_v3/{transfer.convs[0]}, "
        "inception_v3/mixed0", str(tmp_path / "m.png")]
    with Image.open(tmp_path / "m.png") as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_predict_gives_a_grayscale_digit_to_an_rgb_model_as_rgb(transfer, logged, capsys):
    assert cli.main(["predict", str(transfer.path), str(logged.digit)]) == 0
    answer = printed(capsys.readouterr().out)[str(logged.digit)]
    with Image.open(logged.digit) as image:
        rgb = image.convert("RGB").resize((75, 75), Image.Resampling.BILINEAR)
    expected = transfer.model.predict(np.asarray(rgb, "float32")[None], verbose=0)[0]
    assert list(answer) == [FLOWERS[i] for i in np.argsort(-expected)]
    np.testing.assert_allclose([answer[name] for name in FLOWERS], expected, atol=2e-3)


# --- references to nothing: one line, exit 2 --------------------------------------------------

@pytest.mark.parametrize("command, ref, says", [
    ("predict", "models:/nope/1", "models:/nope/1: no registered model 'nope'. Registered "
                                  "models: digits."),
    ("inspect", "models:/digits/7", "models:/digits/7: registered model 'digits' has no "
                                    "version 7. Its versions: 1. Registered models: digits."),
], ids=["unknown-name", "unknown-version"])
def test_a_models_uri_to_nothing_lists_what_is_registered(logged, monkeypatch, capsys,
                                                          command, ref, says):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    capsys.readouterr()
    assert cli.main([command, ref, *([str(logged.digit)] if command == "predict" else [])]) == 2
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err.strip() == f"cnnkeras {command}: error: {says}"


def bad_refs(logged: Logged) -> list:
    return [
        (f"runs:/{logged.empty_run}/model", f"run {logged.empty_run} has no model 'model'; "
                                            "it has logged no model."),
        ("runs:/0123456789abcdef/model", "no run '0123456789abcdef' in the tracking store"),
        ("models:/m-0123456789abcdef", "no logged model 'm-0123456789abcdef' (models:/ takes "
                                       "NAME/VERSION, NAME/latest or a model id). Registered"),
        ("models:/digits/latest-ish", "has no version latest-ish. Its versions: 1."),
    ]


@pytest.mark.parametrize("command", ["predict", "inspect", "filters", "feature-maps"])
def test_a_uri_to_nothing_is_one_line_in_every_command(logged, monkeypatch, capsys, command):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.uri)
    for ref, says in bad_refs(logged):
        extra = {"predict": [str(logged.digit)], "feature-maps": ["--image", str(logged.digit)]}
        assert cli.main([command, ref, *extra.get(command, [])]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err and ref in err


def test_an_image_that_cannot_become_the_models_input_is_named(tmp_path, logged, capsys):
    inputs = keras.Input((8, 8, 2))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    path = save_classifier(keras.Model(inputs, outputs), tmp_path / "two.keras", ["a", "b"])
    assert cli.main(["predict", str(path), str(logged.digit)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"cnnkeras predict: error: cannot convert {str(logged.digit)!r} to the "
                   "model's input 8x8x2: a picture becomes 1 (grayscale) or 3 (RGB) channels, "
                   "not 2.")


def test_a_keras_file_that_is_not_a_model_says_so_in_every_command(tmp_path, capsys):
    (tmp_path / "notes.keras").write_text("not a model\n")
    for command in ("inspect", "filters"):
        assert cli.main([command, str(tmp_path / "notes.keras")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "is not a Keras model: it is not a zip archive" in err


def test_a_nested_layer_that_does_not_exist_names_the_path_form(transfer, photos, capsys):
    assert cli.main(["feature-maps", str(transfer.path), "--image", str(photos[0]),
                     "--layers", "conv9999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnkeras feature-maps: error: 'inception_v3_transfer' has no layer "
                          "'conv9999'. Its layers: image, pixels, preprocess, inception_v3, "
                          "avg_pool, predictions. Layers of nested models are named by path")
    assert len(err.splitlines()) == 1
