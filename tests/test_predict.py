"""`cnnkeras predict`: top-k from a saved classifier, and the ImageNet path.

The saved classifier here is a small stand-in with a saved classifier's contract
(RGB pixels in the sidecar's input range in, softmax out, class names beside it), so
these tests cost seconds; the Inception v3 model that `cnnkeras transfer` saves (pixels
in [0, 255], scaled by its own ``pixels`` layer) is predicted with in tests/test_transfer.py.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

from cnnkeras import cli, predict
from cnnkeras.transfer.saving import input_range, load_classifier, save_classifier, sidecar_path

NAMES = ("red", "green", "blue")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """Class = the brightest mean channel: an exact, hand-set model, saved and sidecar'd."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 20,
                                                np.zeros(3, "float32")])
    return save_classifier(model, tmp_path_factory.mktemp("model") / "colours.keras", NAMES)


def save(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


def test_top_k_names_come_from_the_sidecar_after_a_safe_mode_reload(classifier, tmp_path):
    paths = [save(tmp_path, f"{n}.png", Image.new("RGB", (40, 30), c)) for n, c in
             (("r", (250, 20, 20)), ("g", (20, 250, 20)), ("b", (20, 20, 250)))]
    paths.append(save(tmp_path, "grey-blue.png", Image.new("RGB", (40, 30), (20, 20, 250))
                      .convert("L")))  # one channel: all three equal after conversion
    results = predict.predict_images(classifier, paths, k=2)
    assert [r.top[0][0] for r in results[:3]] == list(NAMES)
    assert all(len(r.top) == 2 and r.top[0][1] >= r.top[1][1] for r in results)
    assert results[0].top[0][1] == pytest.approx(1 / (1 + 2 * np.exp(-20 * 230 / 255)), rel=1e-4)
    assert results[3].top[0][1] == pytest.approx(1 / 3, abs=1e-6)


def test_a_model_on_unit_pixels_gets_them_as_its_sidecar_says(classifier, tmp_path):
    """The same hand-set model taking [0, 1] pixels (as models trained on the pipeline did
    before the scaling moved into the model; their sidecars say so): same top-k."""
    original, names = load_classifier(classifier)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    unit = keras.Model(inputs, outputs)
    unit.get_layer("predictions").set_weights(original.get_layer("predictions").get_weights())
    path = save_classifier(unit, tmp_path / "unit.keras", names, input_range=(0, 1))
    assert input_range(path) == (0, 1) and input_range(classifier) == (0, 255)
    image = save(tmp_path, "sky.png", Image.new("RGB", (24, 24), (30, 90, 220)))
    expected = predict.predict_images(classifier, [image], k=3)[0].top
    got = predict.predict_images(path, [image], k=3)[0].top
    assert [label for label, _ in got] == [label for label, _ in expected] == [
        "blue", "green", "red"]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in expected], rtol=1e-5)


def test_cli_prints_each_image_with_its_ranked_classes(classifier, tmp_path, capsys):
    image = save(tmp_path, "leaf.jpg", Image.new("RGB", (20, 20), (10, 240, 10)))
    assert cli.main(["predict", str(classifier), str(image), "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image)
    ranked = [line.split()[:2] for line in lines[1:]]
    assert ranked == [["1.", "green"], ["2.", "red"], ["3.", "blue"]]  # a tie keeps class order
    assert sum(float(line.split()[-1]) for line in lines[1:]) == pytest.approx(1.0, abs=1e-3)


def test_missing_sidecar_falls_back_to_class_numbers_with_a_warning(classifier, tmp_path):
    copy = tmp_path / "alone.keras"
    copy.write_bytes(classifier.read_bytes())
    image = save(tmp_path, "x.png", Image.new("RGB", (16, 16), (250, 0, 0)))
    with pytest.warns(UserWarning, match="alone.classes.json is missing"):
        results = predict.predict_images(copy, [image], k=1)
    assert results[0].top[0][0] == "class_0"


def test_sidecar_of_another_model_is_refused(classifier, tmp_path):
    copy = tmp_path / "other.keras"
    copy.write_bytes(classifier.read_bytes())
    sidecar_path(copy).write_text(json.dumps({"class_names": ["a", "b"]}))
    with pytest.raises(ValueError, match="names 2 classes but the model has 3 outputs"):
        predict.predict_images(copy, [save(tmp_path, "x.png", Image.new("RGB", (4, 4)))])


@pytest.mark.parametrize("content, message", [
    (b"GIF89a broken", "cannot read .* as an image"),
    (None, "does not exist"),
])
def test_unreadable_image_is_one_clear_cli_line(classifier, tmp_path, capsys, content,
                                                message):
    path = tmp_path / "photo.gif"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["predict", str(classifier), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "photo.gif" in err
    assert re.search(message, err)


def test_model_without_images_and_options_without_imagenet_are_refused(classifier, capsys):
    assert cli.main(["predict", str(classifier)]) == 2
    assert "at least one image" in capsys.readouterr().err
    assert cli.main(["predict", str(classifier), "x.jpg", "--weights", "w.h5"]) == 2
    assert "--weights and --class-index go with --imagenet" in capsys.readouterr().err


def offline(*args, **kwargs):
    """Keras' get_file without internet: a bare Exception raised while handling a URLError."""
    try:
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    except urllib.error.URLError as err:
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: "  # noqa: B904
                        f"None -- {err.reason}")


def test_imagenet_without_internet_is_one_line_naming_the_offline_option(tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    image = save(tmp_path, "cat.jpg", Image.new("RGB", (50, 40), (120, 90, 60)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["predict", "--imagenet", str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "could not fetch the ImageNet weights" in err and "--weights PATH" in err
    assert "needs internet" in err and "Temporary failure in name resolution" in err


def test_imagenet_missing_weights_file_is_a_clear_error(tmp_path, capsys):
    image = save(tmp_path, "cat.jpg", Image.new("RGB", (50, 40)))
    missing = tmp_path / "inception.h5"
    assert cli.main(["predict", "--imagenet", "--weights", str(missing), str(image)]) == 2
    assert f"weights file '{missing}' does not exist" in capsys.readouterr().err


def test_imagenet_labels_from_a_class_index_file_or_numbered_when_offline(tmp_path,
                                                                          monkeypatch):
    probabilities = np.zeros((1, 1000))
    probabilities[0, [7, 300, 999]] = [0.2, 0.7, 0.1]
    index = {str(i): [f"n{i:08d}", f"thing{i}"] for i in range(1000)}
    (tmp_path / "index.json").write_text(json.dumps(index))
    named = predict.decoded(probabilities, 2, str(tmp_path / "index.json"))
    assert named == [(("n00000300 thing300", 0.7), ("n00000007 thing7", 0.2))]
    monkeypatch.setattr("keras.src.applications.imagenet_utils.CLASS_INDEX", None)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.warns(UserWarning, match="class names unavailable"):
        numbered = predict.decoded(probabilities, 1)
    assert numbered == [(("imagenet class 300", 0.7),)]


@pytest.mark.slow
def test_imagenet_inception_from_an_offline_weights_file(tmp_path, capsys, monkeypatch):
    """The whole 1000-class Inception v3 from a weights file (random, saved here)."""
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    keras.utils.set_random_seed(0)
    weights = tmp_path / "inception_v3.weights.h5"
    reference = keras.applications.InceptionV3(weights=None)
    reference.save_weights(weights)
    image = save(tmp_path, "cat.jpg", Image.new("RGB", (320, 240), (120, 90, 60)))
    results = predict.predict_imagenet([image], weights=str(weights), k=3)
    expected = reference.predict_on_batch(keras.applications.inception_v3.preprocess_input(
        predict.batch_of([image], (299, 299))))[0]
    assert [label for label, _ in results[0].top] == [
        f"imagenet class {i}" for i in np.argsort(-expected)[:3]]
    np.testing.assert_allclose([p for _, p in results[0].top], np.sort(expected)[::-1][:3],
                               rtol=1e-5)


def test_a_model_saved_before_the_contract_is_refused_saying_how_to_resave_it(tmp_path,
                                                                              capsys):
    inputs = keras.Input((16, 16, 3))  # scaled outside, as models were: no pixels layer
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    keras.Model(inputs, outputs).save(tmp_path / "old.keras")  # and no sidecar
    image = save(tmp_path, "x.png", Image.new("RGB", (16, 16), (250, 0, 0)))
    capsys.readouterr()
    assert cli.main(["predict", str(tmp_path / "old.keras"), str(image)]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    (line,) = printed.err.strip().splitlines()
    assert "old.keras was saved before cnnkeras models carried their class names" in line
    assert "Re-save it" in line and "log_model" in line
