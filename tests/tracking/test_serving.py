"""`cnnkeras serve`: MLflow's scoring server answers with named class probabilities."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import keras
import numpy as np

from cnnkeras import tracking
from cnnkeras.data import idx
from cnnkeras.tracking import models


def mnist(mnist_dir, count: int):
    images = idx.read_idx(next(mnist_dir.glob("t10k-images*")))[:count, ..., None]
    labels = idx.read_idx(next(mnist_dir.glob("t10k-labels*")))[:count]
    return images.astype("float32"), labels


def test_serve_answers_two_real_mnist_images_as_model_predict_does(
        tracking_store, tmp_path, mnist_dir, loopback):
    images, labels = mnist(mnist_dir, 300)
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 5, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[:256], labels[:256], epochs=2, verbose=0)
    run = tracking.create_run(tracking.experiment_id("serving"), name="served")
    uri = models.log_model(run, model, class_names=[str(i) for i in range(10)],
                           input_example=images[256:258])
    tracking.end_run(run)
    registered = models.register(uri, "mnist-served", run_id=run.run_id)
    port = loopback.free_port()
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cnnkeras", "serve", registered, "--port", str(port)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        loopback.wait_for_http(f"http://127.0.0.1:{port}/ping", server, timeout=120)
        two = images[290:292]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", method="POST",
            data=json.dumps({"inputs": two.tolist()}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())["predictions"]
        assert [list(row) for row in answer] == [[str(i) for i in range(10)]] * 2
        served = np.array([[row[str(i)] for i in range(10)] for row in answer])
        np.testing.assert_allclose(served, model.predict(two, verbose=0), rtol=1e-4, atol=1e-6)
        printed = (tmp_path / "serve.log").read_text()
        assert f"Serving {registered} at http://127.0.0.1:{port}/invocations" in printed
        assert "classes: 0, 1, 2" in printed
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert not loopback.answers(f"http://127.0.0.1:{port}/ping")


def test_serving_a_model_that_does_not_exist_is_one_line_naming_the_registered_ones(
        tracking_store, tmp_path, run_cli):
    done = run_cli("serve", "models:/nothing/3", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("cnnkeras serve: error: No model at models:/nothing/3")
    assert "Registered models: none yet" in line
