"""``cnnkeras.geometry``: output sizes, tiling, the size walk, and the shared option checks."""

from __future__ import annotations

import pytest

from cnnkeras.geometry import (
    GeometryError,
    Window,
    check_geometry,
    output_shape,
    output_size,
    per_block,
    per_block_options,
    positive_int,
    positive_ints,
    tiles_evenly,
    tiling_remainder,
)


@pytest.mark.parametrize("args,expected", [
    ((227, 11, 4, 0), 55), ((224, 11, 4, 0), 54), ((224, 7, 2, 3), 112), ((28, 3), 26),
    ((27, 5, 1, 2), 27), ((224, 3, 2, "same"), 112), ((13, 3, 2, "valid"), 6),
    ((32, 3, 1, 0, 2), 28),
])
def test_output_size(args, expected):
    assert output_size(*args) == expected


def test_224_does_not_tile_with_alexnets_first_layer_but_227_does():
    assert tiles_evenly(227, 11, 4, 0)
    assert not tiles_evenly(224, 11, 4, 0) and tiling_remainder(224, 11, 4, 0) == 1
    assert tiling_remainder(224, 11, 4, "same") == 0
    assert output_size(224, 11, 4, 0) == 54  # the default rounds down, as TensorFlow does
    with pytest.raises(GeometryError, match="remainder 1"):
        output_size(224, 11, 4, 0, strict=True)
    assert output_size(227, 11, 4, 0, strict=True) == 55


def test_output_smaller_than_one_is_a_clear_error():
    with pytest.raises(ValueError, match="output would be -1"):
        output_size(5, 7)


def test_output_shape_names_the_layer_and_the_whole_input():
    assert output_shape((8, 28, 28), 2, 2) == (4, 14, 14)
    with pytest.raises(GeometryError, match=r"block4_pool: input 1x3: kernel_size=2"):
        output_shape((1, 3), 2, 2, layer="block4_pool")


# --- the size walk ---------------------------------------------------------------------------

def test_check_geometry_walks_the_windows_and_names_the_first_that_does_not_fit():
    alexnet_head = [Window("conv1_conv", 11, 4), Window("conv1_pool", 3, 2)]
    assert check_geometry((227, 227, 3), alexnet_head) == (27, 27)
    with pytest.raises(GeometryError, match=r"^conv1_pool: input 1x1: kernel_size=3"):
        check_geometry((12, 12, 3), alexnet_head)


# --- options given once or per block ---------------------------------------------------------

def test_per_block_broadcasts_a_scalar_and_checks_a_sequence():
    assert per_block(3, 2, "kernel_sizes") == (3, 3)
    assert per_block("same", 3, "paddings") == ("same",) * 3
    assert per_block([1, 2], 2, "strides") == (1, 2)
    with pytest.raises(ValueError, match=r"strides needs one value per stage \(4\)"):
        per_block((1, 2), 4, "strides", unit="stage")


def test_per_block_options_take_the_block_count_from_the_first_option():
    assert per_block_options((8, 16), kernel_sizes=3, paddings=("same", "valid")) == (
        (8, 16), {"kernel_sizes": (3, 3), "paddings": ("same", "valid")})
    with pytest.raises(ValueError, match=r"rates needs at least one conv block"):
        per_block_options((), "rates")


@pytest.mark.parametrize("value,count,expected", [(2, 2, (2, 2)), ((1, 3, 5), 3, (1, 3, 5)),
                                                  ([4], 1, (4,))])
def test_positive_ints(value, count, expected):
    assert positive_ints(value, count, "strides", "owner") == expected


@pytest.mark.parametrize("value", [0, (1, 0), (1, 2, 3), 2.5, "2", None])
def test_positive_ints_reject_anything_else_naming_the_owner_and_value(value):
    with pytest.raises(ValueError, match=r"^NNConv2D: strides must be a positive integer or "
                                         r"2 positive integers. Received: strides="):
        positive_ints(value, 2, "strides", "NNConv2D")


@pytest.mark.parametrize("value", [0, -3, 1.5, "4", None])
def test_positive_int_rejects_anything_but_a_positive_integer(value):
    assert positive_int(7, "filters", "NNConv1D") == 7
    with pytest.raises(ValueError, match=r"^NNConv1D: filters must be a positive integer\. "
                                         r"Received: filters="):
        positive_int(value, "filters", "NNConv1D")
