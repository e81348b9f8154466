"""Offline, every real loading path fails for the network and for nothing else.

tensorflow-datasets and Keras import some modules only on their download path, so
a module missing from the install used to be reported as "no internet". These tests
go down the real paths (a real tfds builder into an empty data_dir, Keras' real
weights download) and check the exception chain ends in a network error. They are
skipped where the download host answers: there they would download for real.
"""

from __future__ import annotations

import os
import socket
import urllib.error
from pathlib import Path

import pytest

import cnnkeras
from cnnkeras import data, network, predict
from cnnkeras.architectures.inception import NOTOP_FILE, TOP_FILE

PLAN = data.SplitPlan(validation_fraction=0.1, test_fraction=0.2, seed=7)
GOOGLE_STORAGE = ("storage.googleapis.com", 443)


def skip_if_reachable(host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return
    pytest.skip(f"{host}:{port} answers: this machine is online and would download")


def assert_network_failure(err: ValueError, *, names: str, instead: str) -> None:
    """One line naming what failed and what to use instead; a network error at the root."""
    chain = list(network.chain(err))
    assert not any(isinstance(e, ImportError) for e in chain), chain
    assert isinstance(network.network_cause(err), OSError), chain  # socket, urllib, requests
    message = str(err)
    assert len(message.splitlines()) == 1
    assert names in message and "needs internet" in message and instead in message


@pytest.mark.parametrize("name, host", [
    ("mnist", GOOGLE_STORAGE),
    ("tf_flowers", ("download.tensorflow.org", 80)),
])
def test_tfds_download_into_an_empty_data_dir_fails_for_the_network(name, host, tmp_path,
                                                                     monkeypatch):
    skip_if_reachable(*host)
    # tfds retries a failed request 10 times with back-off (3.5 minutes offline);
    # once is enough to see why it fails.
    monkeypatch.setattr("tensorflow_datasets.core.download.downloader.MAX_RETRIES", 0)
    with pytest.raises(ValueError) as caught:
        data.load_source(name, PLAN, str(tmp_path))
    assert_network_failure(caught.value, names=f"tfds dataset {name!r}",
                           instead="use idx:DIR or folder:DIR")


def test_tfds_finds_its_dataset_code_the_step_that_imports_importlib_resources(tmp_path):
    """``code_path`` (where the download URLs are read from) is tfds' lazy import site."""
    import tensorflow_datasets as tfds

    code = type(tfds.builder("mnist", data_dir=str(tmp_path))).code_path
    assert code.name == "mnist.py" and code.exists()


def raised_from(cause: BaseException) -> Exception:
    """An exception raised while handling ``cause``, as Keras' ``get_file`` raises its own."""
    try:
        raise cause
    except BaseException:
        try:
            raise RuntimeError("URL fetch failure on https://example.invalid/w.h5")  # noqa: B904
        except RuntimeError as err:
            return err


def test_a_missing_module_is_an_installation_problem_and_never_the_network():
    try:
        import cnnkeras_no_such_module  # noqa: F401
    except ModuleNotFoundError as missing:
        wrapped = raised_from(missing)
    message = str(network.download_error("Could not load tfds dataset 'mnist'", wrapped,
                                         instead="use idx:DIR"))
    assert message.startswith("Could not load tfds dataset 'mnist': ModuleNotFoundError: No "
                              "module named 'cnnkeras_no_such_module'. This is an installation")
    assert "internet" not in message and network.network_cause(wrapped) is None


def test_only_a_network_error_in_the_chain_says_internet():
    offline = raised_from(urllib.error.URLError(socket.gaierror(-3, "Temporary failure")))
    assert isinstance(network.network_cause(offline), urllib.error.URLError)
    assert "needs internet" in str(network.download_error("X", offline, instead="use Y"))
    other = raised_from(PermissionError(13, "Permission denied"))  # an OSError, not the network
    assert network.network_cause(other) is None
    assert str(network.download_error("X", other, instead="use Y")) == (
        "X: RuntimeError: URL fetch failure on https://example.invalid/w.h5. Alternatively, use Y.")


def keras_cached(filename: str) -> bool:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return (home / "models" / filename).exists()


@pytest.mark.parametrize("fetch, filename, instead", [
    (lambda: cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=5,
                            weights="imagenet"), NOTOP_FILE, "weights=PATH"),
    (lambda: cnnkeras.build("inception_v3", input_shape=(75, 75, 3), num_classes=5,
                            weights="imagenet", frozen_base=True), NOTOP_FILE, "--weights PATH"),
    (lambda: predict.imagenet_model("imagenet"), TOP_FILE, "--weights PATH"),
], ids=["inception_v3_builder", "transfer_base", "predict_imagenet"])
def test_imagenet_weights_download_fails_for_the_network(fetch, filename, instead):
    skip_if_reachable(*GOOGLE_STORAGE)
    if keras_cached(filename):
        pytest.skip(f"{filename} is in the Keras cache: nothing to download")
    with pytest.raises(ValueError) as caught:
        fetch()
    assert_network_failure(caught.value, names="ImageNet weights for Inception v3",
                           instead=instead)
