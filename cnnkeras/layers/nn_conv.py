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
``dilate_kernel`` and run the op at rate 1: the atrous convolution of the
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

from cnnkeras.analysis import output_size


def spatial_tuple(value, rank: int, label: str, owner: str) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` positive ints, as a tuple; anything else raises."""
    items = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(items) != rank or not all(isinstance(v, int) and v >= 1 for v in items):
        raise ValueError(
            f"{owner}: {label} must be a positive integer or {rank} positive integers. "
            f"Received: {label}={value!r}"
        )
    return items


def dilate_kernel(kernel, rates):
    """``kernel`` (spatial axes first) with ``rate - 1`` zeros inserted between its taps.

    Along an axis of ``k`` taps at rate ``r`` the kernel becomes ``r * (k - 1) + 1``
    taps, so a rate-1 convolution with it is the dilated convolution:
    ``[1, 2, 3]`` at rate 3 is ``[1, 0, 0, 2, 0, 0, 3]``. Differentiable, so the
    kernel trains through it.
    """
    for axis, rate in enumerate(rates):
        if rate == 1:
            continue
        shape = tf.shape(kernel)
        taps = shape[axis]
        spread = tf.expand_dims(kernel, axis + 1)  # (..., k, 1, ...)
        padding = [[0, 0]] * (len(kernel.shape) + 1)
        padding[axis + 1] = [0, rate - 1]
        spread = tf.pad(spread, padding)  # (..., k, rate, ...): each tap then rate-1 zeros
        merged = tf.concat([shape[:axis], [taps * rate], shape[axis + 1:]], axis=0)
        spread = tf.reshape(spread, merged)
        kernel = tf.gather(spread, tf.range((taps - 1) * rate + 1), axis=axis)
    return kernel


class NNConvBase(keras.layers.Layer):
    """What every ``tf.nn`` conv layer shares: checks, geometry, bias, activation, config.

    A subclass sets ``rank`` and ``paddings``, creates its kernels in
    ``build_kernels(in_channels) -> out_channels`` and runs its op in ``op``.
    """

    rank = 2
    paddings = ("valid", "same")

    def __init__(self, kernel_size, strides=1, padding="valid", dilation_rate=1, *,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.kernel_size = spatial_tuple(kernel_size, self.rank, "kernel_size", owner)
        self.strides = spatial_tuple(strides, self.rank, "strides", owner)
        self.dilation_rate = spatial_tuple(dilation_rate, self.rank, "dilation_rate", owner)
        if not isinstance(padding, str) or padding.lower() not in self.paddings:
            raise ValueError(
                f"{owner}: padding must be one of {', '.join(map(repr, self.paddings))}. "
                f"Received: padding={padding!r}"
            )
        self.padding = padding.lower()
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: strides > 1 cannot be combined with dilation_rate > 1 "
                f"(the op would silently ignore one). Received: strides={strides!r}, "
                f"dilation_rate={dilation_rate!r}"
            )
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(
                f"{self.name}: the channel dimension of the input must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.spatial_output(tuple(input_shape[1:-1]))  # raises if the kernel does not fit
        out_channels = self.build_kernels(int(in_channels))
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(out_channels,), initializer=self.bias_initializer
            )
        self.input_spec = keras.layers.InputSpec(
            ndim=self.rank + 2, axes={-1: int(in_channels)}
        )

    def spatial_output(self, sizes) -> tuple:
        """Output spatial sizes (None stays None), from ``cnnkeras.analysis.output_size``."""
        padding = "same" if self.padding == "causal" else self.padding
        result = []
        for axis, size in enumerate(sizes):
            if size is None:
                result.append(None)
                continue
            try:
                result.append(output_size(int(size), self.kernel_size[axis], self.strides[axis],
                                          padding, self.dilation_rate[axis]))
            except ValueError as err:  # GeometryError stays a GeometryError
                raise type(err)(f"{self.name} (spatial axis {axis}): {err}") from None
        return tuple(result)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.spatial_output(tuple(input_shape[1:-1])),
                self.output_channels(input_shape[-1]))

    def call(self, inputs):
        outputs = self.op(inputs)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, outputs.dtype))
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            padding=self.padding,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


class NNFilterConv(NNConvBase):
    """A conv with ``filters`` outputs and one kernel of shape ``kernel_size + (in, filters)``."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 **kwargs):
        super().__init__(kernel_size, strides, padding, dilation_rate, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(
                f"{type(self).__name__}: filters must be a positive integer. "
                f"Received: filters={filters!r}"
            )
        self.filters = filters

    def output_channels(self, in_channels):
        return self.filters

    def build_kernels(self, in_channels):
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (in_channels, self.filters),
            initializer=self.kernel_initializer,
        )
        return self.filters

    def dilated_kernel(self, dtype):
        """The kernel in ``dtype``, dilated explicitly (see ``dilate_kernel``)."""
        return dilate_kernel(tf.cast(self.kernel, dtype), self.dilation_rate)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides,
                      dilation_rate=self.dilation_rate)
        return config


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
        if not isinstance(rate, int) or rate < 1:
            raise ValueError(f"NNAtrousConv2D: rate must be a positive integer. Received: "
                             f"rate={rate!r}")
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
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(
                f"{type(self).__name__}: depth_multiplier must be a positive integer. "
                f"Received: depth_multiplier={depth_multiplier!r}"
            )
        self.depth_multiplier = depth_multiplier

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
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise ValueError(
                f"NNSeparableConv2D: depth_multiplier must be a positive integer. "
                f"Received: depth_multiplier={depth_multiplier!r}"
            )
        self.depth_multiplier = depth_multiplier

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
