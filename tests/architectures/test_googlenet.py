"""GoogLeNet: Table 1's module widths and sizes, the parameter count, the auxiliary heads."""

from __future__ import annotations

import numpy as np
import pytest

import cnnkeras
from cnnkeras.architectures.googlenet import inference_model, loss_weights


@pytest.fixture(scope="module")
def googlenet():
    return cnnkeras.build("googlenet", input_shape=(224, 224, 3), num_classes=1000)


def test_inception_modules_have_the_papers_output_sizes(googlenet):
    expected = {"3a": (28, 28, 256), "3b": (28, 28, 480), "4a": (14, 14, 512),
                "4b": (14, 14, 512), "4c": (14, 14, 512), "4d": (14, 14, 528),
                "4e": (14, 14, 832), "5a": (7, 7, 832), "5b": (7, 7, 1024)}
    got = {name: tuple(googlenet.get_layer(f"inception{name}_output").output.shape[1:])
           for name in expected}
    assert got == expected
    assert tuple(googlenet.get_layer("pool2").output.shape[1:]) == (28, 28, 192)


def test_googlenet_parameter_count_is_the_papers_6_8m(googlenet):
    assert googlenet.count_params() == 6_998_552
    # Table 1 counts weights without biases, in K = 1024: its conv2 row is 112K
    conv2 = [googlenet.get_layer(n).kernel for n in ("conv2_reduce_conv", "conv2_conv")]
    assert sum(int(np.prod(kernel.shape)) for kernel in conv2) == 112 * 1024
    biases = sum(int(np.prod(w.shape)) for w in googlenet.weights if w.name == "bias")
    assert biases == 8_280  # what the table leaves out
    assert googlenet.get_layer("inception3a_3x3_conv").count_params() == 3 * 3 * 96 * 128 + 128
    assert len(googlenet.outputs) == 1 and loss_weights(googlenet) is None


def test_auxiliary_heads_give_three_outputs_weighted_one_and_three_tenths():
    model = cnnkeras.build("googlenet", input_shape=(65, 65, 3), num_classes=4,
                           aux_classifiers=True)
    assert list(model.output_names) == ["predictions", "aux1", "aux2"]
    weights = loss_weights(model)
    assert weights == {"predictions": 1.0, "aux1": 0.3, "aux2": 0.3}
    losses = {name: "sparse_categorical_crossentropy" for name in model.output_names}
    model.compile(optimizer="sgd", loss=losses, loss_weights=weights, run_eagerly=True)
    x = (np.random.default_rng(0).random((2, 65, 65, 3)) * 255).astype("float32")
    y = np.array([0, 3])
    logs = model.train_on_batch(x, {"predictions": y, "aux1": y, "aux2": y},
                                 return_dict=True)
    assert np.isfinite(logs["loss"])
    plain = inference_model(model)
    assert len(plain.outputs) == 1 and plain.count_params() < model.count_params()
    np.testing.assert_allclose(np.asarray(plain(x)), np.asarray(model(x)[0]), rtol=1e-6)


def test_auxiliary_heads_at_224_add_the_papers_head_parameters():
    model = cnnkeras.build("googlenet", input_shape=(224, 224, 3), num_classes=1000,
                           aux_classifiers=True)
    head = 512 * 128 + 128 + 4 * 4 * 128 * 1024 + 1024 + 1024 * 1000 + 1000
    assert model.count_params() == 6_998_552 + head + head + 16 * 128  # aux2 sees 528 maps


def test_auxiliary_heads_need_a_5x5_map():
    with pytest.raises(ValueError, match="at least 65x65"):
        cnnkeras.build("googlenet", input_shape=(64, 64, 3), num_classes=4,
                       aux_classifiers=True)
