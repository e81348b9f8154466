"""Models logged with MLflow's Keras flavour, registered, and loaded back three ways."""

from __future__ import annotations

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from cnnkeras import tracking
from cnnkeras.tracking import models

CLASSES = [f"digit {i}" for i in range(10)]


@pytest.fixture
def digits_model():
    """A small dense classifier of scikit-learn's real 8x8 digits, pixels 0-16 as 0-255."""
    digits = load_digits()
    images = (digits.images[..., None] * (255.0 / 16.0)).astype("float32")
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[:1000], digits.target[:1000], epochs=2, verbose=0)
    return model, images[1000:1004]


def test_a_logged_model_loads_as_keras_and_as_pyfunc_with_named_probabilities(
        tracking_store, digits_model):
    model, images = digits_model
    run = tracking.create_run(tracking.experiment_id("models"), name="logged")
    uri = models.log_model(run, model, class_names=CLASSES, input_example=images[:2])
    assert uri.startswith("models:/m-")
    assert tracking.client().get_run(run.run_id).info.status == "RUNNING"  # still ours to end
    expected = model.predict(images, verbose=0)
    for address in (uri, f"runs:/{run.run_id}/model"):
        answer = mlflow.pyfunc.load_model(address).predict(images)
        assert isinstance(answer, pd.DataFrame) and list(answer.columns) == CLASSES
        np.testing.assert_allclose(answer.to_numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(answer.sum(axis=1), 1.0, rtol=1e-5)
    reloaded = mlflow.keras.load_model(uri)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, rtol=1e-5)
    assert models.model_metadata(uri) == {"class_names": CLASSES, "input_shape": [8, 8, 1],
                                          "input_range": [0, 255]}
    info = mlflow.models.get_model_info(uri)
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 8, 8, 1)
    assert info.saved_input_example_info is not None  # the example MLflow 3.17 failed to save


def test_registering_twice_makes_versions_one_and_two_with_their_tags(tracking_store,
                                                                     digits_model):
    model, images = digits_model
    run = tracking.create_run(tracking.experiment_id("models"), name="registered")
    uri = models.log_model(run, model, class_names=CLASSES, input_example=images[:1])
    first = models.register(uri, "digits-classifier", run_id=run.run_id, tags={"trial": "03"})
    second = models.register(uri, "digits-classifier", run_id=run.run_id)
    assert (first, second) == ("models:/digits-classifier/1", "models:/digits-classifier/2")
    assert models.registered_names() == ["digits-classifier"]
    version = tracking.client().get_model_version("digits-classifier", "1")
    assert version.tags == {"trial": "03"} and version.run_id == run.run_id
    latest = mlflow.pyfunc.load_model("models:/digits-classifier/latest").predict(images)
    np.testing.assert_allclose(latest.to_numpy(), model.predict(images, verbose=0), rtol=1e-5)
