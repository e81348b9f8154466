"""The layers LeNet-5 (LeCun, Bottou, Bengio, Haffner, 1998) needs and Keras lacks.

- ``ScaledTanh``: the squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3.
- ``Subsampling2D``: S2/S4: the mean of each 2x2 window, times a trainable
  coefficient, plus a trainable bias, one pair per map (2 parameters per map).
- ``ConnectionTableConv2D``: C3: a convolution where output map j sees only the
  input maps ``table[j]``; only those kernels exist as weights.
- ``EuclideanRBF`` with ``DigitBitmaps``: the output layer; unit i gives the
  squared distance between its input and a fixed +-1 prototype (a 7x12 bitmap
  of digit i), so lower means more likely.
- ``RubbishClassPenalty``: the term of the paper's loss (eq. 9) that the
  cross-entropy of softmax(-y) lacks, as an activity regulariser on the RBF
  output (see its docstring for the algebra).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

# The 7x12 prototypes of the digits 0-9, drawn in the style of the paper's
# Figure 3: "#" is +1, "." is -1; row r of digit d is the d-th word of line r.
DIGIT_BITMAPS_ASCII = """
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
..###.. ...#... .#####. .#####. .....#. ####### ..####. ####### ..###.. ..###..
.#...#. ..##... #.....# #.....# ....##. #...... .#..... ......# .#...#. .#...#.
#.....# .#.#... ......# ......# ...#.#. #...... #...... .....#. #.....# #.....#
#.....# ...#... ......# ......# ..#..#. ######. #...... .....#. .#...#. #.....#
#.....# ...#... .....#. ..####. .#...#. ......# #.###.. ....#.. ..###.. .#...##
#.....# ...#... ...##.. ......# ####### ......# ##...#. ....#.. .#...#. ..###.#
#.....# ...#... ..#.... ......# .....#. ......# #.....# ...#... #.....# ......#
.#...#. ...#... .#..... #.....# .....#. #.....# .#...#. ...#... #.....# .....#.
..###.. .#####. ####### .#####. .....#. .#####. ..###.. ...#... .#####. .####..
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""


def digit_bitmaps() -> np.ndarray:
    """The ten bitmaps as an array of shape (10, 12, 7) of +-1."""
    rows = [line.split() for line in DIGIT_BITMAPS_ASCII.strip().splitlines()]
    grid = np.array([[list(word) for word in row] for row in rows])  # (12, 10, 7)
    return np.where(grid.transpose(1, 0, 2) == "#", 1.0, -1.0).astype("float32")


@keras.saving.register_keras_serializable(package="cnnkeras")
class DigitBitmaps(keras.initializers.Initializer):
    """Prototypes of shape (84, classes): digit bitmaps for classes 0-9, then seeded random +-1.

    The paper also drew codes for characters beyond the digits; here any class
    past the tenth gets a random +-1 code (seeded, so the model is reproducible).
    """

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def __call__(self, shape, dtype=None):
        features, classes = shape
        if features != 84:
            raise ValueError(f"DigitBitmaps draws 7x12 = 84-pixel prototypes. "
                             f"Received: shape={tuple(shape)}")
        codes = digit_bitmaps().reshape(10, 84)[:classes]
        extra = classes - len(codes)
        if extra > 0:
            rng = np.random.default_rng(self.seed)
            codes = np.concatenate([codes, rng.choice([-1.0, 1.0], size=(extra, 84))])
        return ops.convert_to_tensor(codes.T, dtype=dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="cnnkeras")
class ScaledTanh(keras.layers.Layer):
    """f(a) = amplitude * tanh(slope * a); LeCun's A = 1.7159, S = 2/3 make f(+-1) = +-1."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0, **kwargs):
        super().__init__(**kwargs)
        self.amplitude = float(amplitude)
        self.slope = float(slope)

    def call(self, inputs):
        return self.amplitude * ops.tanh(self.slope * inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(amplitude=self.amplitude, slope=self.slope)
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class Subsampling2D(keras.layers.Layer):
    """Mean of each non-overlapping window, times a per-map coefficient, plus a per-map bias."""

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"Subsampling2D: pool_size must be a positive integer. "
                             f"Received: pool_size={pool_size!r}")
        self.pool_size = pool_size

    def build(self, input_shape):
        maps = input_shape[-1]
        self.coefficient = self.add_weight(shape=(maps,), initializer="ones", name="coefficient")
        self.bias = self.add_weight(shape=(maps,), initializer="zeros", name="bias")

    def call(self, inputs):
        pooled = ops.average_pool(inputs, self.pool_size, self.pool_size, padding="valid")
        return pooled * self.coefficient + self.bias

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, h // self.pool_size if h else h, w // self.pool_size if w else w, c)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size)
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class ConnectionTableConv2D(keras.layers.Layer):
    """'valid' convolution in which output map j is connected only to input maps ``table[j]``.

    The kernels of the connections are one weight of shape (k, k, connections),
    scattered into a dense (k, k, in, out) kernel with zeros elsewhere at call
    time, so the parameter count is k*k*connections + out (C3: 1,516).
    """

    def __init__(self, table, kernel_size: int = 5, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.table = tuple(tuple(int(i) for i in inputs) for inputs in table)
        if not self.table or any(not inputs or len(set(inputs)) != len(inputs)
                                 for inputs in self.table):
            raise ValueError("ConnectionTableConv2D: every output map needs a non-empty list "
                             f"of distinct input maps. Received: table={table!r}")
        self.kernel_size = int(kernel_size)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @property
    def connections(self) -> int:
        return sum(len(inputs) for inputs in self.table)

    def build(self, input_shape):
        maps = input_shape[-1]
        if max(max(inputs) for inputs in self.table) >= maps or min(map(min, self.table)) < 0:
            raise ValueError(f"{self.name}: the table names input maps outside 0..{maps - 1}. "
                             f"Received: table={self.table}")
        index = np.full((maps, len(self.table)), self.connections, dtype="int32")
        slot = 0
        for out, inputs in enumerate(self.table):
            for source in inputs:
                index[source, out] = slot
                slot += 1
        self._index = index.reshape(-1).tolist()
        self._in_maps = int(maps)
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, self.connections),
                                      initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(len(self.table),), initializer="zeros", name="bias")

    def dense_kernel(self):
        """The (k, k, in, out) kernel with zeros where the table has no connection."""
        k = self.kernel_size
        padded = ops.concatenate([self.kernel, ops.zeros((k, k, 1), self.kernel.dtype)], -1)
        full = ops.take(padded, self._index, axis=-1)
        return ops.reshape(full, (k, k, self._in_maps, len(self.table)))

    def call(self, inputs):
        kernel = ops.cast(self.dense_kernel(), inputs.dtype)
        return ops.conv(inputs, kernel, strides=1, padding="valid") + ops.cast(
            self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        shrink = self.kernel_size - 1
        return (n, h - shrink if h else h, w - shrink if w else w, len(self.table))

    def multiply_adds(self, input_shape, output_shape) -> int:
        """Multiply-adds per image: one per kernel tap per connection per output pixel."""
        return int(output_shape[1] * output_shape[2] * self.kernel_size ** 2 * self.connections)

    def get_config(self):
        config = super().get_config()
        config.update(table=[list(inputs) for inputs in self.table], kernel_size=self.kernel_size,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class EuclideanRBF(keras.layers.Layer):
    """y_i = sum_j (x_j - w_ji)^2 with fixed (non-trainable) prototypes w: a distance per class."""

    def __init__(self, units: int, prototype_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"EuclideanRBF: units must be a positive integer. "
                             f"Received: units={units!r}")
        self.units = units
        self.prototype_initializer = keras.initializers.get(
            prototype_initializer or DigitBitmaps())

    def build(self, input_shape):
        self.prototypes = self.add_weight(
            shape=(int(input_shape[-1]), self.units), initializer=self.prototype_initializer,
            trainable=False, name="prototypes")

    def call(self, inputs):
        prototypes = ops.cast(self.prototypes, inputs.dtype)
        # |x - w|^2 = |x|^2 - 2 x.w + |w|^2, one matrix product for the batch
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        return squared - 2.0 * ops.matmul(inputs, prototypes) + ops.sum(
            ops.square(prototypes), axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def multiply_adds(self, input_shape, output_shape) -> int:
        return int(input_shape[-1] * self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, prototype_initializer=keras.initializers.serialize(
            self.prototype_initializer))
        return config


@keras.saving.register_keras_serializable(package="cnnkeras")
class RubbishClassPenalty(keras.regularizers.Regularizer):
    """The rubbish-class term of eq. (9), log(1 + exp(-j) / sum_i exp(-y_i)), per sample.

    Eq. (9) is E = mean_p [ y_D + log(exp(-j) + sum_i exp(-y_i)) ] over the RBF
    outputs y (D the correct class). Softmax cross-entropy over -y is
    y_D + log S with S = sum_i exp(-y_i); the difference,
    log(exp(-j) + S) - log S = log(1 + exp(-j) / S) = softplus(-j - logsumexp(-y)),
    does not depend on the label, so it is a loss on the RBF output alone. As the
    RBF layer's ``activity_regularizer`` it is summed here and divided by the batch
    size by Keras, which adds it to the compiled loss: the total is eq. (9).
    """

    def __init__(self, j: float):
        if not j > 0:
            raise ValueError(f"RubbishClassPenalty: j must be a positive constant (eq. 9). "
                             f"Received: j={j!r}")
        self.j = float(j)

    def __call__(self, distances):
        distances = ops.cast(distances, "float32")
        return ops.sum(ops.softplus(-self.j - ops.logsumexp(-distances, axis=-1)))

    def get_config(self):
        return {"j": self.j}
