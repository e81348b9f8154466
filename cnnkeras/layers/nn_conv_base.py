"""What every ``tf.nn`` convolution layer shares (``cnnkeras.layers.nn_conv``).

``NNConvBase`` checks the arguments when the layer is made, the geometry when it is
built (``cnnkeras.geometry.output_size``), and adds the bias, activation and config;
``NNFilterConv`` adds ``filters`` and one kernel; ``dilate_kernel`` dilates a kernel
explicitly for the ops whose CPU kernels refuse a dilation above 1.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from cnnkeras.geometry import output_size, positive_int, positive_ints


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
        self.kernel_size = positive_ints(kernel_size, self.rank, "kernel_size", owner)
        self.strides = positive_ints(strides, self.rank, "strides", owner)
        self.dilation_rate = positive_ints(dilation_rate, self.rank, "dilation_rate", owner)
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
        """Output spatial sizes (None stays None), from ``cnnkeras.geometry.output_size``."""
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
        self.filters = positive_int(filters, "filters", type(self).__name__)

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
