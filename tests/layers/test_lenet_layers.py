"""LeNet-5's layers against NumPy: subsampling, the C3 connection table, the RBF output and loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnkeras.architectures.lenet import C3_TABLE
from cnnkeras.layers import (
    ConnectionTableConv2D,
    DigitBitmaps,
    EuclideanRBF,
    ScaledTanh,
    Subsampling2D,
)
from cnnkeras.layers.lenet import RubbishClassPenalty, digit_bitmaps


def valid_conv(x, kernel):
    """NumPy 'valid' stride-1 convolution (cross-correlation), NHWC x HWIO."""
    k = kernel.shape[0]
    view = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # N,h,w,C,k,k
    return np.einsum("nhwcij,ijco->nhwo", view, kernel)


def test_digit_bitmaps_are_ten_distinct_7x12_plus_minus_one_codes():
    codes = digit_bitmaps()
    assert codes.shape == (10, 12, 7)
    assert set(np.unique(codes)) == {-1.0, 1.0}
    flat = codes.reshape(10, -1)
    distances = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 0


def test_prototypes_beyond_ten_classes_are_seeded_random_codes():
    first = np.asarray(DigitBitmaps(seed=0)((84, 12)))
    again = np.asarray(DigitBitmaps(seed=0)((84, 12)))
    np.testing.assert_array_equal(first[:, :10], digit_bitmaps().reshape(10, 84).T)
    np.testing.assert_array_equal(first, again)
    assert set(np.unique(first[:, 10:])) == {-1.0, 1.0}


def test_scaled_tanh_maps_plus_minus_one_to_themselves():
    out = np.asarray(ScaledTanh()(np.array([-1.0, 0.0, 1.0], "float32")))
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0], atol=1e-4)


def test_subsampling_is_window_mean_times_coefficient_plus_bias():
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")
    layer = Subsampling2D(2)
    layer.build(x.shape)
    coefficient, bias = np.array([0.5, -2.0, 3.0]), np.array([0.1, 0.2, -0.3])
    layer.set_weights([coefficient, bias])
    expected = x.reshape(2, 3, 2, 3, 2, 3).mean(axis=(2, 4)) * coefficient + bias
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 6


def test_connection_table_conv_equals_masked_dense_conv():
    table = ((0,), (1, 2), (0, 1, 2))
    layer = ConnectionTableConv2D(table, 3)
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype("float32")
    layer.build(x.shape)
    assert layer.count_params() == 9 * 6 + 3
    dense = np.asarray(layer.dense_kernel())
    mask = np.zeros((3, 3), bool)
    for out, sources in enumerate(table):
        mask[list(sources), out] = True
    assert (dense[:, :, ~mask] == 0).all() and (dense[:, :, mask] != 0).all()
    bias = np.array([0.5, -1.0, 2.0], "float32")
    layer.bias.assign(bias)
    np.testing.assert_allclose(np.asarray(layer(x)), valid_conv(x, dense) + bias,
                               rtol=1e-5, atol=1e-5)


def test_c3_table_is_the_papers_table_one():
    assert [len(s) for s in C3_TABLE] == [3] * 6 + [4] * 9 + [6]
    assert C3_TABLE[0] == (0, 1, 2) and C3_TABLE[6] == (0, 1, 2, 3)
    assert C3_TABLE[12:15] == ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5))
    layer = ConnectionTableConv2D(C3_TABLE, 5)
    layer.build((None, 14, 14, 6))
    assert layer.count_params() == 1516


def test_euclidean_rbf_gives_squared_distances_to_fixed_prototypes():
    x = np.random.default_rng(2).normal(size=(4, 84)).astype("float32")
    layer = EuclideanRBF(10)
    distances = np.asarray(layer(x))
    prototypes = digit_bitmaps().reshape(10, 84)
    expected = ((x[:, None, :] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(distances, expected, rtol=1e-4)
    assert layer.trainable_weights == [] and layer.count_params() == 840


def test_lenet_layers_round_trip_through_a_saved_model(tmp_path):
    inputs = keras.Input((14, 14, 6))
    x = ConnectionTableConv2D(C3_TABLE, 5, name="c3")(inputs)
    x = Subsampling2D(2, name="s4")(ScaledTanh(name="tanh")(x))
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(84)(x)
    model = keras.Model(inputs, EuclideanRBF(12, name="rbf")(x))
    sample = np.random.default_rng(3).normal(size=(1, 14, 14, 6)).astype("float32")
    model.save(tmp_path / "lenet_layers.keras")
    loaded = keras.models.load_model(tmp_path / "lenet_layers.keras")
    np.testing.assert_allclose(loaded.predict(sample, verbose=0),
                               model.predict(sample, verbose=0), rtol=1e-5)
    assert loaded.get_layer("c3").table == C3_TABLE


def test_connection_table_rejects_maps_the_input_lacks():
    with pytest.raises(ValueError, match="outside 0..2"):
        ConnectionTableConv2D(((0, 5),), 3).build((None, 8, 8, 3))


def test_rubbish_class_penalty_is_eq9_minus_the_cross_entropy_by_hand():
    # y = (2, 2, 2), j = 2: log(1 + e^-2 / (3 e^-2)) = ln(4/3) = 0.2876821 per sample;
    # y = (0, 4, 8), j = 2: log(1 + e^-2 / (1 + e^-4 + e^-8)) = ln(1.1539864 / 1.0186511)
    # = 0.1247431. The regulariser sums over the batch (Keras divides by its size).
    distances = np.array([[2.0, 2.0, 2.0], [0.0, 4.0, 8.0]], "float32")
    penalty = float(RubbishClassPenalty(j=2.0)(distances))
    assert penalty == pytest.approx(0.2876821 + 0.1247431, abs=1e-6)


def test_rubbish_class_penalty_round_trips_and_rejects_a_non_positive_j():
    penalty = keras.regularizers.deserialize(keras.regularizers.serialize(RubbishClassPenalty(3.0)))
    assert isinstance(penalty, RubbishClassPenalty) and penalty.j == 3.0
    with pytest.raises(ValueError, match="j must be a positive constant"):
        RubbishClassPenalty(j=0.0)
