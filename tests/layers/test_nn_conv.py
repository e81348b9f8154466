"""The tf.nn convolution layers against their Keras counterparts and a NumPy reference.

Their shared checks and serialization are in test_nn_conv_base.py."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnkeras.geometry import output_size
from cnnkeras.layers import (
    NNAtrousConv2D,
    NNConv1D,
    NNConv2DTranspose,
    NNConv3D,
    NNDepthwiseConv2D,
    NNSeparableConv2D,
)
from cnnkeras.layers.nn_conv_base import dilate_kernel

ATOL = 1e-5


# --- NumPy references: a sum over kernel offsets of strided input slices ---------------------

def pad_amounts(size, kernel, stride, dilation, padding):
    """(before, after, out) along one axis, as TensorFlow pads 'valid', 'same' and 'causal'."""
    effective = dilation * (kernel - 1) + 1
    if padding == "valid":
        return 0, 0, (size - effective) // stride + 1
    out = math.ceil(size / stride)
    if padding == "causal":
        return effective - 1, 0, out
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out


def padded_windows(x, kernel_shape, strides, dilations, padding):
    """Yield (kernel offset, the input slice that offset multiplies) over all offsets."""
    axes = zip(x.shape[1:-1], kernel_shape, strides, dilations, strict=True)
    geometry = [pad_amounts(size, k, s, d, padding) for size, k, s, d in axes]
    x = np.pad(x, [(0, 0)] + [(b, a) for b, a, _ in geometry] + [(0, 0)])
    for offset in itertools.product(*(range(k) for k in kernel_shape)):
        axes = zip(offset, dilations, strides, geometry, strict=True)
        index = tuple(slice(o * d, o * d + (out - 1) * s + 1, s) for o, d, s, (_, _, out) in axes)
        yield offset, x[(slice(None), *index)]


def np_conv(x, w, strides, dilations, padding):
    """Standard N-d conv: x (N, *S, C), w (*K, C, F) -> (N, *S', F)."""
    return sum(np.tensordot(window, w[offset], axes=([-1], [0]))
               for offset, window in padded_windows(x, w.shape[:-2], strides, dilations, padding))


def np_depthwise(x, w, strides, dilations, padding):
    """Depthwise 2-d conv: w (kh, kw, C, M) -> output channel c*M + m."""
    out = sum(window[..., :, None] * w[offset]
              for offset, window in padded_windows(x, w.shape[:2], strides, dilations, padding))
    return out.reshape(out.shape[:-2] + (-1,))


def np_conv_transpose(x, w, strides, dilations, padding, out_sizes):
    """Transposed conv by scattering: input pixel i adds x[i] @ w[o].T at i*s + o*d - pad."""
    kernel = w.shape[:-2]
    befores = []
    axes = zip(out_sizes, x.shape[1:-1], kernel, strides, dilations, strict=True)
    for out, size, k, s, d in axes:
        total = max((size - 1) * s + d * (k - 1) + 1 - out, 0) if padding == "same" else 0
        befores.append(total // 2)
    full = [max((size - 1) * s + d * (k - 1) + 1, out + b) for size, k, s, d, out, b
            in zip(x.shape[1:-1], kernel, strides, dilations, out_sizes, befores, strict=True)]
    y = np.zeros((x.shape[0], *full, w.shape[-2]), dtype=np.float64)
    for offset in itertools.product(*(range(k) for k in kernel)):
        axes = zip(offset, dilations, strides, x.shape[1:-1], strict=True)
        index = tuple(slice(o * d, o * d + (size - 1) * s + 1, s) for o, d, s, size in axes)
        y[(slice(None), *index)] += np.tensordot(x, w[offset], axes=([-1], [1]))
    crop = tuple(slice(b, b + out) for b, out in zip(befores, out_sizes, strict=True))
    return y[(slice(None), *crop)]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def copy_and_compare(ours, theirs, x):
    """Copy the Keras layer's weights into ours; return both outputs as NumPy.

    ``expected`` is None where Keras' own layer refuses to run on this CPU: without
    oneDNN TensorFlow has no dilated Conv3D or Conv2DBackpropInput kernel, and
    Keras fails there too. The NumPy reference then stands alone.
    """
    try:
        expected = np.asarray(theirs(x))
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as err:
        assert "dilat" in str(err), err  # only the missing kernel, nothing else, is excused
        if not theirs.built:
            theirs.build(x.shape)
        expected = None
    ours(x)
    ours.set_weights(theirs.get_weights())
    return np.asarray(ours(x)), expected


def assert_matches_keras(ours, expected):
    if expected is not None:
        np.testing.assert_allclose(ours, expected, atol=ATOL)


def with_bias(y, layer):
    return y + layer.get_weights()[-1] if layer.use_bias else y


# --- The reference itself, on a case worked by hand ------------------------------------------

def test_numpy_reference_matches_a_hand_computed_conv():
    x = np.arange(5, dtype="float32").reshape(1, 5, 1)  # 0 1 2 3 4
    w = np.array([1.0, 10.0], dtype="float32").reshape(2, 1, 1)
    assert np_conv(x, w, (1,), (1,), "valid").ravel().tolist() == [10, 21, 32, 43]
    assert np_conv(x, w, (2,), (1,), "valid").ravel().tolist() == [10, 32]
    assert np_conv(x, w, (1,), (2,), "valid").ravel().tolist() == [20, 31, 42]
    assert np_conv(x, w, (1,), (1,), "causal").ravel().tolist() == [0, 10, 21, 32, 43]


# --- Each layer against its Keras counterpart and the reference ------------------------------

CONV1D = [  # (length, kernel, strides, padding, dilation)
    (9, 3, 1, "valid", 1), (9, 3, 2, "same", 1), (8, 2, 3, "valid", 1),
    (10, 3, 1, "same", 2), (7, 3, 1, "causal", 2), (6, 4, 2, "causal", 1),
]


@pytest.mark.parametrize("length,kernel,stride,padding,dilation", CONV1D)
def test_conv1d_matches_keras_and_numpy(length, kernel, stride, padding, dilation):
    x = rand(2, length, 3)
    kw = dict(strides=stride, padding=padding, dilation_rate=dilation)
    ours, expected = copy_and_compare(NNConv1D(4, kernel, **kw),
                                      keras.layers.Conv1D(4, kernel, **kw), x)
    np.testing.assert_allclose(ours, expected, atol=ATOL)
    layer = NNConv1D(4, kernel, **kw, use_bias=False)
    got = np.asarray(layer(x))
    reference = np_conv(x, layer.get_weights()[0], (stride,), (dilation,), padding)
    np.testing.assert_allclose(got, reference, atol=ATOL)
    assert got.shape[1] == output_size(length, kernel, stride,
                                       "same" if padding == "causal" else padding, dilation)


CONV3D = [  # (volume, kernel, strides, padding, dilation)
    ((4, 5, 5), 3, 1, "valid", 1), ((4, 6, 5), (2, 3, 3), (1, 2, 2), "same", 1),
    ((5, 5, 6), 2, 1, "same", 2), ((3, 4, 4), (1, 2, 3), 1, "valid", (1, 1, 1)),
]


@pytest.mark.parametrize("volume,kernel,stride,padding,dilation", CONV3D)
def test_conv3d_matches_keras_and_numpy(volume, kernel, stride, padding, dilation):
    x = rand(2, *volume, 2, seed=1)
    kw = dict(strides=stride, padding=padding, dilation_rate=dilation)
    layer = NNConv3D(3, kernel, **kw)
    ours, expected = copy_and_compare(layer, keras.layers.Conv3D(3, kernel, **kw), x)
    assert_matches_keras(ours, expected)
    reference = with_bias(np_conv(x, layer.get_weights()[0], layer.strides, layer.dilation_rate,
                                  padding), layer)
    np.testing.assert_allclose(ours, reference, atol=ATOL)


ATROUS = [  # (size, kernel, rate, padding)
    ((9, 9), 3, 1, "valid"), ((9, 9), 3, 2, "same"), ((10, 8), 3, 3, "valid"),
    ((7, 7), (2, 3), 2, "same"), ((12, 12), 3, 4, "same"),
]


@pytest.mark.parametrize("size,kernel,rate,padding", ATROUS)
def test_atrous_conv_matches_dilated_keras_conv_and_numpy(size, kernel, rate, padding):
    x = rand(2, *size, 3, seed=2)
    layer = NNAtrousConv2D(4, kernel, rate=rate, padding=padding)
    ours, expected = copy_and_compare(
        layer, keras.layers.Conv2D(4, kernel, dilation_rate=rate, padding=padding), x)
    np.testing.assert_allclose(ours, expected, atol=ATOL)
    reference = with_bias(np_conv(x, layer.get_weights()[0], (1, 1), (rate, rate), padding), layer)
    np.testing.assert_allclose(ours, reference, atol=ATOL)


TRANSPOSE = [  # (size, kernel, strides, padding, dilation)
    ((4, 4), 3, 1, "valid", 1), ((4, 5), 3, 2, "same", 1), ((3, 3), 2, 2, "valid", 1),
    ((3, 4), 4, 2, "same", 1), ((3, 3), 1, 3, "valid", 1), ((4, 4), 3, 1, "same", 2),
    ((5, 3), (3, 2), (2, 1), "valid", 1),
]


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", TRANSPOSE)
def test_conv_transpose_matches_keras_and_numpy(size, kernel, stride, padding, dilation):
    x = rand(2, *size, 3, seed=3)
    kw = dict(strides=stride, padding=padding, dilation_rate=dilation)
    layer = NNConv2DTranspose(2, kernel, **kw)
    ours, expected = copy_and_compare(layer, keras.layers.Conv2DTranspose(2, kernel, **kw), x)
    assert_matches_keras(ours, expected)
    reference = with_bias(np_conv_transpose(x, layer.get_weights()[0], layer.strides,
                                            layer.dilation_rate, padding, ours.shape[1:3]), layer)
    np.testing.assert_allclose(ours, reference, atol=ATOL)


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", TRANSPOSE)
def test_conv_transpose_output_size_is_output_size_in_reverse(size, kernel, stride, padding,
                                                              dilation):
    layer = NNConv2DTranspose(2, kernel, strides=stride, padding=padding, dilation_rate=dilation)
    out = layer(rand(1, *size, 1)).shape[1:3]
    for axis in range(2):
        assert output_size(out[axis], layer.kernel_size[axis], layer.strides[axis], padding,
                           layer.dilation_rate[axis]) == size[axis]


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", TRANSPOSE)
def test_conv_transpose_is_the_gradient_of_conv2d(size, kernel, stride, padding, dilation):
    layer = NNConv2DTranspose(2, kernel, strides=stride, padding=padding, dilation_rate=dilation,
                              use_bias=False)
    upstream = rand(2, *size, 3, seed=4)
    transposed = layer(upstream)
    big = tf.constant(rand(2, *transposed.shape[1:3], 2, seed=5))
    with tf.GradientTape() as tape:
        tape.watch(big)
        # rate 1 on the explicitly dilated kernel: the dilated conv2d, on every CPU
        forward = tf.nn.conv2d(big, dilate_kernel(layer.kernel, layer.dilation_rate),
                               strides=layer.strides, padding=padding.upper())
    assert forward.shape[1:3] == size
    gradient = tape.gradient(forward, big, output_gradients=tf.constant(upstream))
    np.testing.assert_allclose(np.asarray(transposed), np.asarray(gradient), atol=ATOL)


DEPTHWISE = [  # (size, kernel, strides, padding, depth_multiplier, dilation)
    ((7, 7), 3, 1, "valid", 1, 1), ((8, 7), 3, 2, "same", 2, 1), ((9, 9), 3, 1, "same", 3, 2),
    ((6, 6), (2, 3), 3, "valid", 1, 1), ((9, 8), 2, 1, "valid", 2, 3),
]


@pytest.mark.parametrize("size,kernel,stride,padding,multiplier,dilation", DEPTHWISE)
def test_depthwise_conv_matches_keras_and_numpy(size, kernel, stride, padding, multiplier,
                                                dilation):
    x = rand(2, *size, 3, seed=6)
    kw = dict(strides=stride, padding=padding, depth_multiplier=multiplier,
              dilation_rate=dilation)
    layer = NNDepthwiseConv2D(kernel, **kw)
    ours, expected = copy_and_compare(layer, keras.layers.DepthwiseConv2D(kernel, **kw), x)
    np.testing.assert_allclose(ours, expected, atol=ATOL)
    assert ours.shape[-1] == 3 * multiplier
    reference = with_bias(np_depthwise(x, layer.get_weights()[0], layer.strides,
                                       layer.dilation_rate, padding), layer)
    np.testing.assert_allclose(ours, reference, atol=ATOL)


@pytest.mark.parametrize("size,kernel,stride,padding,multiplier,dilation", DEPTHWISE)
def test_separable_conv_matches_keras_and_numpy(size, kernel, stride, padding, multiplier,
                                                dilation):
    x = rand(2, *size, 3, seed=7)
    kw = dict(strides=stride, padding=padding, depth_multiplier=multiplier,
              dilation_rate=dilation)
    layer = NNSeparableConv2D(5, kernel, **kw)
    ours, expected = copy_and_compare(layer, keras.layers.SeparableConv2D(5, kernel, **kw), x)
    np.testing.assert_allclose(ours, expected, atol=ATOL)
    depthwise, pointwise, bias = layer.get_weights()
    middle = np_depthwise(x, depthwise, layer.strides, layer.dilation_rate, padding)
    reference = np.tensordot(middle, pointwise[0, 0], axes=([-1], [0])) + bias
    np.testing.assert_allclose(ours, reference, atol=ATOL)


# --- Training through a dilation, on every CPU -------------------------------------------------

DILATED = [
    (lambda: NNConv1D(3, 3, dilation_rate=2, use_bias=False), (9, 2)),
    (lambda: NNConv3D(3, 2, dilation_rate=(2, 1, 2), padding="same", use_bias=False), (4, 5, 5, 2)),
    (lambda: NNAtrousConv2D(3, 3, rate=2, use_bias=False), (8, 8, 2)),
    (lambda: NNConv2DTranspose(3, 3, dilation_rate=2, use_bias=False), (4, 4, 2)),
    (lambda: NNDepthwiseConv2D(3, dilation_rate=2, use_bias=False), (7, 7, 2)),
    (lambda: NNSeparableConv2D(3, 3, dilation_rate=2, use_bias=False), (7, 7, 2)),
]


@pytest.mark.parametrize("make,shape", DILATED)
def test_dilated_layers_train_and_their_input_gradient_is_the_adjoint(make, shape):
    """<layer(x), g> = <x, dL/dx> for a linear layer: the backward op runs and is exact."""
    layer = make()
    x = tf.constant(rand(2, *shape, seed=9))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        g = tf.constant(rand(*y.shape, seed=10))
        loss = tf.reduce_sum(y * g)
    grad_x = tape.gradient(loss, x)
    grad_w = tape.gradient(loss, layer.trainable_weights)
    np.testing.assert_allclose(float(loss), float(tf.reduce_sum(x * grad_x)), rtol=1e-4)
    assert all(w is not None and float(tf.reduce_sum(tf.abs(w))) > 0 for w in grad_w)
