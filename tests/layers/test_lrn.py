"""Local response normalisation against the paper's formula written in NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnkeras.layers import LocalResponseNormalization


def paper_lrn(a, k=2.0, n=5, alpha=1e-4, beta=0.75, alpha_over_size=True):
    """b_i = a_i / (k + alpha' sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, per channel."""
    depth = a.shape[-1]
    scale = alpha / n if alpha_over_size else alpha
    out = np.empty_like(a)
    for i in range(depth):
        lo, hi = max(0, i - n // 2), min(depth - 1, i + n // 2)
        total = (a[..., lo:hi + 1] ** 2).sum(axis=-1)
        out[..., i] = a[..., i] / (k + scale * total) ** beta
    return out


@pytest.mark.parametrize("alpha_over_size", [True, False])
def test_lrn_matches_paper_formula(alpha_over_size):
    # large activations so that the alpha term moves the result measurably
    a = np.random.default_rng(0).normal(scale=30.0, size=(2, 3, 3, 11)).astype("float64")
    layer = LocalResponseNormalization(alpha_over_size=alpha_over_size)
    got = np.asarray(layer(a.astype("float32")))
    expected = paper_lrn(a, alpha_over_size=alpha_over_size)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    other = paper_lrn(a, alpha_over_size=not alpha_over_size)
    assert not np.allclose(got, other, rtol=1e-5)


def test_lrn_passes_tensorflow_radius_and_alpha_over_n():
    layer = LocalResponseNormalization()
    assert layer.depth_radius == 2
    assert layer.tf_alpha == pytest.approx(2e-5)
    assert LocalResponseNormalization(alpha_over_size=False).tf_alpha == pytest.approx(1e-4)


def test_lrn_round_trips_through_config_and_file(tmp_path):
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, LocalResponseNormalization(size=3, k=1.0, name="lrn")(inputs))
    model.save(tmp_path / "lrn.keras")
    loaded = keras.models.load_model(tmp_path / "lrn.keras").get_layer("lrn")
    assert (loaded.size, loaded.k, loaded.alpha, loaded.beta) == (3, 1.0, 1e-4, 0.75)


def test_lrn_rejects_even_window():
    with pytest.raises(ValueError, match="positive odd integer"):
        LocalResponseNormalization(size=4)


def test_lrn_accepts_bfloat16_for_mixed_precision():
    a = np.random.default_rng(1).normal(scale=30.0, size=(1, 2, 2, 7)).astype("float32")
    layer = LocalResponseNormalization(dtype="mixed_bfloat16")
    out = layer(a)
    assert "bfloat16" in str(out.dtype)
    np.testing.assert_allclose(np.asarray(out, dtype="float32"), paper_lrn(a), rtol=2e-2)
