"""Keras layers over the raw ``tf.nn`` convolution ops.

Each layer's ``call`` is one ``tf.nn`` op, while its constructor arguments and
weight layout follow its Keras counterpart, so
``layer.set_weights(keras_layer.get_weights())`` gives the same output:

=====================  ============================  ===================================
layer                  op                            Keras counterpart
=====================  ============================  ===================================
``NNConv1D``           ``tf.nn.conv1d``              ``Conv1D``
``NNConv3D``           ``tf.nn.conv3d``              ``Conv3D``
``NNAtrousConv2D``     ``tf.nn.atrous_conv2d``       ``Conv2D(dilation_rate=rate)``
``NNConv2DTranspose``  ``tf.nn.conv2d_transpose``    ``Conv2DTranspose``
``NNDepthwiseConv2D``  ``tf.nn.depthwise_conv2d``    ``DepthwiseConv2D``
``NNSeparableConv2D``  ``tf.nn.separable_conv2d``    ``SeparableConv2D``
=====================  ============================  ===================================

Dilation is exact on every CPU. TensorFlow's CPU kernels without oneDNN (AMD,
ARM and Apple CPUs, or ``TF_ENABLE_ONEDNN_OPTS=0``) refuse a dilation above 1 in
Conv3D and in Conv2DBackpropInput (the op of ``conv2d_transpose`` and of the
input gradient of ``conv1d``), so these layers dilate the kernel themselves with
``nn_conv_base.dilate_kernel`` and run the op at rate 1: the atrous convolution of the
definition, zeros between the taps. ``tf.nn.atrous_conv2d`` and the depthwise
ops dilate through ``space_to_batch`` and need no help.

Arguments are checked when the layer is made (positive sizes, no stride with
dilation, equal strides where the op needs them) and the geometry when it is
built (a kernel must fit a ``"valid"``-padded input), each with a
``ValueError`` that names the value. Inputs are channels-last.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from cnnkeras.geometry import positive_int
from cnnkeras.layers.nn_conv_base import NNConvBase, NNFilterConv


@keras.saving.register_keras_serializable(package="cnnkeras")
class NNConv1D(NNFilterConv):
    """``keras.layers.Conv1D`` on ``tf.nn.conv1d``; ``padding="causal"`` pads on the left."""

    rank = 1
    paddings = ("valid", "same", "causal")

    def op(self, inputs):
        padding = self.padding
        if padding == "causal":
            left = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            inputs = tf.pad(inputs, [[0, 0], [left, 0], [0, 0]])
            padding = "valid"
        return tf.nn.conv1d(
            inputs, self.dilated_kernel(inputs.dtype), stride=self.strides[0],
            padding=padding.upper(),
        )


@keras.saving.register_keras_serializable(package="cnnkeras")
class NNConv3D(NNFilterConv):
    """``keras.layers.Conv3D`` on ``tf.nn.conv3d``, for volumes and clips (frames, h, w, c)."""

    rank = 3

    def op(self, inputs):
        return tf.nn.conv3d(
            inputs, self.dilated_kernel(inputs.dtype),
            strides=(1, *self.strides, 1), padding=self.padding.upper(),
        )


@keras.saving.register_keras_serializable(package="cnnkeras")
class NNAtrousConv2D(NNFilterConv):
    """``Conv2D(dilation_rate=rate)`` on ``tf.nn.atrous_conv2d``: a 2D conv with holes.

    The op has one ``rate`` for both axes and no stride, so ``strides`` must be 1.
    """

    def __init__(self, filters, kernel_size, rate=1, padding="valid", strides=1, **kwargs):
        if "dilation_rate" in kwargs:
            raise ValueError("NNAtrousConv2D takes the dilation as rate=, as tf.nn.atrous_conv2d "
                             f"does. Received: dilation_rate={kwargs['dilation_rate']!r}")
        positive_int(rate, "rate", "NNAtrousConv2D")
        if strides not in (1, (1, 1), [1, 1]):
            raise ValueError(
                "NNAtrousConv2D: tf.nn.atrous_conv2d has no stride; strides must be 1 "
                f"(downsample with a pooling layer instead). Received: strides={strides!r}"
            )
        super().__init__(filters, kernel_size, 1, padding, rate, **kwargs)
        self.rate = rate

    def op(self, inputs):
        return tf.nn.atrous_conv2d(
            inputs, tf.cast(self.kernel, inputs.dtype), rate=self.rate,
            padding=self.padding.upper(),
        )

    def get_config(self):
        config = super().get_config()
        del config["strides"], config["dilation_rate"]
        config["rate"] = self.rate
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class NNConv2DTranspose(NNFilterConv):
    """``keras.layers.Conv2DTranspose`` on ``tf.nn.conv2d_transpose``: the gradient of conv2d.

    Kernel layout ``(kh, kw, filters, in_channels)``, as in Keras. The output is
    ``in * stride`` wide for ``"same"`` and ``(in - 1) * stride + max(k_eff, stride)``
    for ``"valid"`` (k_eff the dilated kernel), so the forward convolution with
    the same settings maps the output back to the input size.
    """

    def build_kernels(self, in_channels):
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (self.filters, in_channels),
            initializer=self.kernel_initializer,
        )
        return self.filters

    def transposed_size(self, size, axis: int):
        """Output length along ``axis`` for an input length (an int or a scalar tensor)."""
        stride = self.strides[axis]
        if self.padding == "same":
            return size * stride
        effective = self.dilation_rate[axis] * (self.kernel_size[axis] - 1) + 1
        return (size - 1) * stride + max(effective, stride)

    def spatial_output(self, sizes) -> tuple:
        return tuple(None if size is None else self.transposed_size(int(size), axis)
                     for axis, size in enumerate(sizes))

    def op(self, inputs):
        dynamic = tf.shape(inputs)
        static = inputs.shape
        sizes = [
            self.transposed_size(static[axis + 1] if static[axis + 1] is not None
                                 else dynamic[axis + 1], axis)
            for axis in range(2)
        ]
        output_shape = tf.stack([dynamic[0], *sizes, self.filters])
        outputs = tf.nn.conv2d_transpose(
            inputs, self.dilated_kernel(inputs.dtype), output_shape,
            strides=(1, *self.strides, 1), padding=self.padding.upper(),
        )
        static_sizes = [s if isinstance(s, int) else None for s in sizes]
        outputs.set_shape((static[0], *static_sizes, self.filters))
        return outputs


def check_equal_strides(layer) -> None:
    """The native depthwise kernels only stride rows and columns alike."""
    if layer.strides[0] != layer.strides[1]:
        raise ValueError(
            f"{type(layer).__name__}: tf.nn depthwise convolutions need equal row and column "
            f"strides. Received: strides={layer.strides!r}"
        )


@keras.saving.register_keras_serializable(package="cnnkeras")
class NNDepthwiseConv2D(NNConvBase):
    """``keras.layers.DepthwiseConv2D`` on ``tf.nn.depthwise_conv2d``.

    Each input channel gets ``depth_multiplier`` filters of its own; the output
    has ``in_channels * depth_multiplier`` channels, channel ``c * m + j`` from
    input channel ``c``. Kernel layout ``(kh, kw, in_channels, depth_multiplier)``.
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 dilation_rate=1, **kwargs):
        super().__init__(kernel_size, strides, padding, dilation_rate, **kwargs)
        check_equal_strides(self)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier",
                                             type(self).__name__)

    def output_channels(self, in_channels):
        return None if in_channels is None else in_channels * self.depth_multiplier

    def build_kernels(self, in_channels):
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (in_channels, self.depth_multiplier),
            initializer=self.kernel_initializer,
        )
        return in_channels * self.depth_multiplier

    def op(self, inputs):
        return tf.nn.depthwise_conv2d(
            inputs, tf.cast(self.kernel, inputs.dtype),
            strides=(1, *self.strides, 1), padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )

    def get_config(self):
        config = super().get_config()
        config.update(strides=self.strides, dilation_rate=self.dilation_rate,
                      depth_multiplier=self.depth_multiplier)
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class NNSeparableConv2D(NNFilterConv):
    """``keras.layers.SeparableConv2D`` on ``tf.nn.separable_conv2d``.

    A depthwise conv (kernel ``(kh, kw, in, depth_multiplier)``) followed by a
    1x1 pointwise conv (kernel ``(1, 1, in * depth_multiplier, filters)``):
    ``kh*kw*in*m + in*m*filters`` weights instead of a standard conv's
    ``kh*kw*in*filters``.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 depth_multiplier=1, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, dilation_rate, **kwargs)
        check_equal_strides(self)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier",
                                             type(self).__name__)

    def build_kernels(self, in_channels):
        middle = in_channels * self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel", shape=self.kernel_size + (in_channels, self.depth_multiplier),
            initializer=self.kernel_initializer,
        )
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel", shape=(1, 1, middle, self.filters),
            initializer=self.kernel_initializer,
        )
        return self.filters

    def op(self, inputs):
        return tf.nn.separable_conv2d(
            inputs, tf.cast(self.depthwise_kernel, inputs.dtype),
            tf.cast(self.pointwise_kernel, inputs.dtype),
            strides=(1, *self.strides, 1), padding=self.padding.upper(),
            dilations=self.dilation_rate,
        )

    def get_config(self):
        config = super().get_config()
        config["depth_multiplier"] = self.depth_multiplier
        return config
