"""Pooling layers: the two Keras has, and the two the notes add (L2-norm and depthwise).

``pooling_layer(kind, ...)`` names all four with one string, so a config or a
search space can choose among them:

- ``"max"``: ``keras.layers.MaxPooling2D``, the largest value in each window;
- ``"average"``: ``keras.layers.AveragePooling2D``, the mean of each window;
- ``"l2"``: ``L2Pooling2D``, sqrt of the sum of squares in each window;
- ``"depthwise"``: ``DepthwiseMaxPooling2D``, the largest of each group of
  ``pool_size`` consecutive channels at each pixel (the spatial size is kept,
  the depth is divided), which lets a network learn invariance to whatever the
  grouped filters differ by (rotation, thickness, ...).
"""

from __future__ import annotations

import keras
from keras import ops

from cnnkeras.geometry import positive_int, positive_ints

POOLING_KINDS = ("max", "average", "l2", "depthwise")


@keras.saving.register_keras_serializable(package="cnnkeras")
class L2Pooling2D(keras.layers.Layer):
    """sqrt(sum of squares) over each window; zero padding for ``padding="same"``.

    The window sum is a depthwise convolution with a kernel of ones, so padded
    positions add nothing (unlike ``AveragePooling2D``'s mean over valid cells).
    ``epsilon`` under the root keeps the gradient finite at an all-zero window.
    """

    def __init__(self, pool_size=2, strides=None, padding: str = "valid",
                 epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = positive_ints(pool_size, 2, "pool_size", "L2Pooling2D")
        self.strides = positive_ints(self.pool_size if strides is None else strides, 2,
                                     "strides", "L2Pooling2D")
        if padding not in ("valid", "same"):
            raise ValueError(f"L2Pooling2D: padding must be 'valid' or 'same'. "
                             f"Received: padding={padding!r}")
        self.padding = padding
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"{self.name}: expects NHWC maps with a known depth. "
                             f"Received: input_shape={input_shape}")
        super().build(input_shape)

    def call(self, inputs):
        ones = ops.ones(self.pool_size + (inputs.shape[-1], 1), dtype=inputs.dtype)
        sums = ops.depthwise_conv(ops.square(inputs), ones, strides=self.strides,
                                  padding=self.padding)
        return ops.sqrt(sums + ops.cast(self.epsilon, inputs.dtype))

    def compute_output_shape(self, input_shape):
        pooled = keras.layers.MaxPooling2D(self.pool_size, self.strides, self.padding)
        return pooled.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                      epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class DepthwiseMaxPooling2D(keras.layers.Layer):
    """Max over each run of ``pool_size`` consecutive channels: (H, W, C) -> (H, W, C/pool_size).

    The same result as ``tf.nn.max_pool(x, ksize=(1, 1, 1, p), strides=(1, 1, 1, p),
    padding="VALID")``, written as a reshape and a max so it runs on every device.
    """

    def __init__(self, pool_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = positive_int(pool_size, "pool_size", "DepthwiseMaxPooling2D")

    def build(self, input_shape):
        depth = input_shape[-1]
        if len(input_shape) != 4 or depth is None or depth % self.pool_size:
            raise ValueError(
                f"{self.name}: the depth must be a known multiple of pool_size="
                f"{self.pool_size}. Received: input_shape={input_shape}"
            )
        super().build(input_shape)

    def call(self, inputs):
        shape = ops.shape(inputs)
        groups = inputs.shape[-1] // self.pool_size
        grouped = ops.reshape(inputs, (shape[0], shape[1], shape[2], groups, self.pool_size))
        return ops.max(grouped, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] // self.pool_size,)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size)
        return config


def pooling_layer(kind: str, pool_size=2, strides=None, padding: str = "valid", *,
                  name=None) -> keras.layers.Layer:
    """One of ``POOLING_KINDS`` as a Keras layer (``depthwise`` uses only ``pool_size``)."""
    if kind == "max":
        return keras.layers.MaxPooling2D(pool_size, strides, padding, name=name)
    if kind == "average":
        return keras.layers.AveragePooling2D(pool_size, strides, padding, name=name)
    if kind == "l2":
        return L2Pooling2D(pool_size, strides, padding, name=name)
    if kind == "depthwise":
        if not isinstance(pool_size, int):
            raise ValueError(f"depthwise pooling groups channels: pool_size must be one "
                             f"integer. Received: pool_size={pool_size!r}")
        return DepthwiseMaxPooling2D(pool_size, name=name)
    raise ValueError(f"Unknown pooling kind {kind!r}. Valid kinds: {', '.join(POOLING_KINDS)}.")
