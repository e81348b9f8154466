"""Stride-1 convolutions whose input gradient is a forward convolution, where that pays.

The gradient of a stride-1 convolution with respect to its input is the convolution of
the output gradient with the kernel flipped in space and its in/out channels swapped
(padded by ``kernel - 1`` for ``valid``). TensorFlow computes it with its
``Conv2DBackpropInput`` kernel, which on CPUs without oneDNN (AMD CPUs such as the EPYC
Zen 3, ARM, or ``TF_ENABLE_ONEDNN_OPTS=0``) is very slow on small maps with many channels.
Measured on an AMD EPYC Zen 3 (TensorFlow 2.21 without oneDNN), one 3x3 convolution's
forward and both gradients at batch 128: 1x1 maps of 512 channels 1,005 ms with
TensorFlow's kernel against 51 ms as a forward convolution, 2x2x256 117 ms against 14 ms,
4x4x128 42 against 15, 28x28x32 about the same. With oneDNN on the two are about the same,
so the switch is made only without it. The kernel's gradient stays TensorFlow's.
"""

from __future__ import annotations

import functools
import re

import keras
import tensorflow as tf

from cnnkeras import logs
from cnnkeras.inspection.graph import walk_layers

PROBE_REFUSAL = re.compile(r"Local rendezvous is aborting")  # TensorFlow's log of it


@functools.cache
def onednn_enabled() -> bool:
    """Whether this process's CPU convolution kernels are oneDNN's, found out where they
    differ: without oneDNN, the CPU's ``Conv2DBackpropInput`` refuses a dilation above 1.
    TensorFlow logs that refusal from C++; that one line is kept off stderr."""
    try:
        with tf.device("/CPU:0"), logs.filtered_stderr(PROBE_REFUSAL):
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=[1, 5, 5, 1], filter=tf.ones((2, 2, 1, 1)),
                out_backprop=tf.ones((1, 3, 3, 1)), strides=[1, 1, 1, 1], padding="VALID",
                dilations=[1, 2, 2, 1])
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        return False
    return True


def switchable(layer) -> bool:
    """A plain ``keras.layers.Conv2D`` of stride 1, no dilation or groups, channels last,
    padded ``valid`` or ``same`` with odd kernel sizes (``same`` then pads evenly)."""
    return (type(layer) is keras.layers.Conv2D and layer.built
            and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
            and layer.groups == 1 and layer.data_format == "channels_last"
            and not getattr(layer, "lora_enabled", False)
            and (layer.padding == "valid" or all(size % 2 for size in layer.kernel_size)))


def convolve(inputs, kernel, *, padding: str):
    """``tf.nn.conv2d`` at stride 1 whose input gradient is itself a forward convolution."""
    kernel = tf.convert_to_tensor(keras.ops.convert_to_tensor(kernel))  # a read, autocast
    height, width = kernel.shape[0], kernel.shape[1]

    @tf.custom_gradient
    def conv(inputs, kernel):
        def gradient(upstream):
            kernel_gradient = tf.raw_ops.Conv2DBackpropFilter(
                input=inputs, filter_sizes=tf.shape(kernel), out_backprop=upstream,
                strides=[1, 1, 1, 1], padding=padding)
            flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            if padding == "VALID":
                upstream = tf.pad(upstream, [[0, 0], [height - 1, height - 1],
                                             [width - 1, width - 1], [0, 0]])
            return tf.nn.conv2d(upstream, flipped, 1, padding), kernel_gradient

        return tf.nn.conv2d(inputs, kernel, 1, padding), gradient

    return conv(inputs, kernel)


def use_forward_input_gradients(model, *, onednn: bool | None = None) -> int:
    """Switch ``model``'s eligible convolutions to ``convolve`` when oneDNN is off.

    ``onednn`` defaults to what this process runs; with a GPU nothing is switched. The
    switch lives on the layer objects only: the model's config, weights and saved files
    are those of plain ``Conv2D`` layers. Returns how many layers were switched."""
    if keras.backend.backend() != "tensorflow" or tf.config.list_logical_devices("GPU"):
        return 0  # a GPU's convolutions are cuDNN's: not measured, left as they are
    if onednn_enabled() if onednn is None else onednn:
        return 0
    switched = 0
    for _, layer in walk_layers(model):
        if switchable(layer):
            layer.convolution_op = functools.partial(convolve, padding=layer.padding.upper())
            switched += 1
    return switched
