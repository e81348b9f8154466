"""LeNet-5 as published: per-layer parameters, shapes, the RBF output; and its modern twin."""

from __future__ import annotations

import gzip

import keras
import numpy as np
import pytest

import cnnkeras

PAPER_PARAMS = {"c1_conv": 156, "s2_subsample": 12, "c3_conv": 1516, "s4_subsample": 32,
                "c5_conv": 48120, "f6_dense": 10164}
PAPER_SHAPES = {"c1_conv": (28, 28, 6), "s2_subsample": (14, 14, 6), "c3_conv": (10, 10, 16),
                "s4_subsample": (5, 5, 16), "c5_conv": (1, 1, 120), "f6_dense": (84,),
                "rbf": (10,)}


def trainable(layer_or_model) -> int:
    return int(sum(np.prod(w.shape) for w in layer_or_model.trainable_weights))


@pytest.fixture(scope="module")
def lenet5():
    return cnnkeras.build("lenet5", input_shape=(32, 32, 1), num_classes=10)


@pytest.mark.parametrize("layer", sorted(PAPER_PARAMS))
def test_lenet5_layer_parameters_match_the_paper(lenet5, layer):
    assert trainable(lenet5.get_layer(layer)) == PAPER_PARAMS[layer]
    assert tuple(lenet5.get_layer(layer).output.shape[1:]) == PAPER_SHAPES[layer]


def test_lenet5_has_60000_trainable_parameters_and_fixed_rbf(lenet5):
    assert trainable(lenet5) == 60_000
    rbf = lenet5.get_layer("rbf")
    assert rbf.trainable_weights == [] and rbf.count_params() == 84 * 10
    assert set(np.unique(rbf.get_weights()[0])) == {-1.0, 1.0}


def test_lenet5_output_is_softmax_of_negative_rbf_distance(lenet5):
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 1)).astype("float32")
    probe = keras.Model(lenet5.inputs, [lenet5.get_layer("rbf").output, lenet5.output])
    distances, probabilities = (np.asarray(t) for t in probe(x))
    assert (distances >= 0).all()
    expected = np.exp(-distances - (-distances).max(-1, keepdims=True))
    np.testing.assert_allclose(probabilities, expected / expected.sum(-1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    assert (probabilities.argmax(-1) == distances.argmin(-1)).all()


def test_lenet5_pads_28x28_mnist_to_32x32_with_the_same_parameters():
    model = cnnkeras.build("lenet5", input_shape=(28, 28, 1), num_classes=10)
    assert tuple(model.get_layer("pad").output.shape[1:]) == (32, 32, 1)
    assert trainable(model) == 60_000


def test_lenet5_modern_is_the_same_geometry_with_a_full_c3():
    model = cnnkeras.build("lenet5_modern", input_shape=(32, 32, 1), num_classes=10)
    assert model.get_layer("c3_conv").count_params() == 2416
    assert tuple(model.get_layer("c5_conv").output.shape[1:]) == (1, 1, 120)
    assert model.count_params() == 156 + 2416 + 48120 + 10164 + 850
    assert isinstance(model.get_layer("s2_pool"), keras.layers.MaxPooling2D)


def test_lenet5_rejects_an_input_it_cannot_pad():
    with pytest.raises(ValueError, match="at least 10x10"):
        cnnkeras.build("lenet5", input_shape=(8, 8, 1), num_classes=10)


def read_idx(path):
    with gzip.open(path) as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


@pytest.mark.slow
def test_lenet5_learns_real_mnist_digits(mnist_dir):
    """Real MNIST test-set images (the shared copy): 3,000 to train, 1,000 held out."""
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[..., None] / 255.0
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz").astype("int64")
    keras.utils.set_random_seed(0)
    model = cnnkeras.build("lenet5", input_shape=(28, 28, 1), num_classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images[:3000], labels[:3000], epochs=3, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(images[9000:], labels[9000:], verbose=0)
    assert accuracy > 0.75  # 0.81 seen; chance is 0.1
