"""LeNet-5 as published: per-layer parameters, shapes, input scale, RBF output and eq. (9) loss;
its modern twin; and the MNIST experiments that train them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cnnkeras
import experiments
from cnnkeras import data, training
from cnnkeras.architectures.lenet import rbf_output
from cnnkeras.config import apply_overrides

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


def test_lenet5_input_maps_background_to_minus_0_1_and_ink_to_1_175():
    pixels = np.zeros((1, 28, 28, 1), "float32")  # raw pixels, as the data pipeline gives them
    pixels[0, 10:18, 10:18] = 255
    model = cnnkeras.build("lenet5", input_shape=(28, 28, 1), num_classes=10)
    assert [layer.name for layer in model.layers[1:4]] == ["pixels", "pad", "normalize"]
    normalized = keras.Model(model.inputs, model.get_layer("normalize").output)(pixels)
    expected = np.full((1, 32, 32, 1), -0.1, "float32")  # the padding is background too
    expected[0, 12:20, 12:20] = 1.175
    np.testing.assert_array_equal(np.asarray(normalized), expected)


def test_compiled_loss_is_eq9_on_a_hand_worked_example():
    """Features (1, 1) and (0, 0); prototypes (1, 1), (1, -1), (-1, -1); j = 2; labels 0, 2.

    y = (0, 4, 8): E1 = 0 + ln(e^-2 + e^0 + e^-4 + e^-8) = ln 1.1539864 = 0.1432224
    y = (2, 2, 2): E2 = 2 + ln(e^-2 + 3 e^-2) = ln 4 = 1.3862944
    E = (E1 + E2) / 2 = 0.7647584; cross-entropy alone would give (0.0184793 + ln 3) / 2.
    """
    features = keras.Input((2,))
    prototypes = keras.initializers.Constant([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])
    model = keras.Model(features, rbf_output(features, 3, rubbish_j=2.0,
                                             prototype_initializer=prototypes))
    training.compile_model(model, optimizer="sgd", learning_rate=0.1)  # as `cnnkeras train`
    x, labels = np.array([[1.0, 1.0], [0.0, 0.0]], "float32"), np.array([0, 2])
    np.testing.assert_allclose(np.asarray(model.get_layer("rbf")(x)), [[0, 4, 8], [2, 2, 2]])
    loss = model.evaluate(x, labels, batch_size=2, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(0.7647584, abs=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0)[1], [1 / 3] * 3, rtol=1e-6)


def test_distortions_keep_the_parameters_and_act_only_while_training():
    plain = cnnkeras.build("lenet5", input_shape=(28, 28, 1), num_classes=10, seed=0)
    model = cnnkeras.build("lenet5", input_shape=(28, 28, 1), num_classes=10, seed=0,
                           distort=True)
    assert trainable(model) == 60_000 and model.count_params() == 60_840
    x = np.zeros((4, 28, 28, 1), "float32")
    x[:, 8:20, 13:15] = 255  # a vertical stroke
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(plain(x, training=False)), rtol=1e-6)
    image = keras.Model(model.inputs, model.get_layer("distort_shear").output)
    assert not np.allclose(np.asarray(image(x, training=True))[:, 2:30, 2:30], x / 255)


def test_lenet5_round_trips_with_its_loss_term_and_distortions(tmp_path):
    model = cnnkeras.build("lenet5", input_shape=(28, 28, 1), num_classes=10, seed=0,
                           rubbish_j=3.0, distort=True)
    model.save(tmp_path / "lenet5.keras")
    loaded = keras.models.load_model(tmp_path / "lenet5.keras")
    x = np.random.default_rng(1).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5)
    assert loaded.get_layer("rbf").activity_regularizer.j == 3.0


@pytest.mark.parametrize("name", ["lenet5_mnist", "lenet5_modern_mnist"])
def test_mnist_experiments_split_the_test_set_as_the_benchmark(name, mnist_dir):
    config = experiments.get(name)
    assert config.model.options["distort"] is True
    split = (config.data.validation_fraction, config.data.test_fraction, config.data.seed)
    assert split == (0.0, 0.2, 0)  # benchmarks/time_to_accuracy.py's split
    source = data.load_source(f"idx:{mnist_dir}", data.SplitPlan(*split))
    assert source.sizes == {"train": 8000, "validation": 0, "test": 2000}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lenet5_mnist", "lenet5_modern_mnist"])
def test_mnist_experiment_reaches_98_5_percent_on_the_2000_held_out(name, mnist_dir,
                                                                     tracking_store, tmp_path):
    """`cnnkeras train --experiment NAME --dataset idx:DIR` with the experiment's defaults."""
    config = apply_overrides(experiments.get(name), [
        f"data.dataset=idx:{mnist_dir}", "runtime.verbose=0", f"runtime.output_dir={tmp_path}"])
    result = training.train_experiment(config)
    assert result.test_metrics["accuracy"] >= 0.985
