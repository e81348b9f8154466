"""Local response normalisation across channels (AlexNet, section 3.3; GoogLeNet's stem).

    b_i = a_i / (k + alpha' * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a_j^2) ** beta

with the paper's k=2, n=5, alpha=1e-4, beta=0.75. The equation as printed uses
``alpha' = alpha``; the cuda-convnet code AlexNet was trained with, and Caffe's
reference model after it, divide by the window: ``alpha' = alpha / n``. The
default follows the code (``alpha_over_size=True``); ``alpha_over_size=False``
gives the printed equation.

``tf.nn.local_response_normalization`` computes
``a / (bias + alpha_tf * sum(a[d - r : d + r + 1] ** 2)) ** beta``: a *radius*
r = (n - 1) / 2 (so n=5 is ``depth_radius=2``) and no division by n, so this layer
passes ``alpha_tf = alpha / n`` (2e-5) or ``alpha`` accordingly.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="cnnkeras")
class LocalResponseNormalization(keras.layers.Layer):
    """LRN over the channel axis of NHWC maps; the paper's parameters by default."""

    def __init__(self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 *, alpha_over_size: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(
                f"LocalResponseNormalization: size (n) must be a positive odd integer, the "
                f"window of channels centred on each one. Received: size={size!r}"
            )
        if k <= 0 or alpha < 0 or beta < 0:
            raise ValueError(
                "LocalResponseNormalization: needs k > 0, alpha >= 0, beta >= 0. "
                f"Received: k={k!r}, alpha={alpha!r}, beta={beta!r}"
            )
        self.size = size
        self.k = float(k)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.alpha_over_size = bool(alpha_over_size)

    @property
    def depth_radius(self) -> int:
        return (self.size - 1) // 2

    @property
    def tf_alpha(self) -> float:
        """The ``alpha`` handed to TensorFlow, which does not divide by the window."""
        return self.alpha / self.size if self.alpha_over_size else self.alpha

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{self.name}: expects NHWC maps (rank 4). Received: input_shape={input_shape}"
            )
        super().build(input_shape)

    def call(self, inputs):
        # TensorFlow's kernel takes float32 and float16 only: bfloat16 goes through float32
        native = inputs.dtype in (tf.float32, tf.float16)
        x = inputs if native else tf.cast(inputs, tf.float32)
        y = tf.nn.local_response_normalization(
            x, depth_radius=self.depth_radius, bias=self.k, alpha=self.tf_alpha, beta=self.beta,
        )
        return y if native else tf.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, k=self.k, alpha=self.alpha, beta=self.beta,
                      alpha_over_size=self.alpha_over_size)
        return config
