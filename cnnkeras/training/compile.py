"""From a config to a compiled model: optimizer, loss, metrics, the label check and facts."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

import cnnkeras
from cnnkeras.config import ExperimentConfig
from cnnkeras.registry import ARCHITECTURES
from cnnkeras.training.conv_gradient import use_forward_input_gradients


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(learning_rate),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate),
        "sgd": lambda: keras.optimizers.SGD(learning_rate, momentum=0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate),
    }
    if name not in optimizers:
        raise ValueError(f"Unknown optimizer {name!r}. Valid: {', '.join(optimizers)}.")
    return optimizers[name]()


def schedule_callbacks(schedule: str, learning_rate: float, epochs: int) -> list:
    """The learning rate over a ``fit`` of ``epochs`` epochs, as Keras callbacks.

    ``constant``: none. ``cosine``: a ``keras.callbacks.LearningRateScheduler`` giving epoch
    e the rate ``learning_rate * (1 + cos(pi * e / epochs)) / 2``, the full rate first and
    a small fraction of it last (SGDR's cosine annealing, by epoch). The epoch is absolute,
    so a resumed ``fit`` (``initial_epoch``) continues the curve; the rate is logged with
    the metrics, as ``learning_rate``.
    """
    if schedule == "constant":
        return []
    return [keras.callbacks.LearningRateScheduler(
        lambda epoch, _: learning_rate * (1 + math.cos(math.pi * epoch / epochs)) / 2)]


def compile_model(model: keras.Model, *, optimizer: str, learning_rate: float,
                  jit_compile: bool = False, metrics=None) -> keras.Model:
    """Sparse categorical cross-entropy and accuracy, the classifier default.

    Without oneDNN, its stride-1 convolutions take their input gradient as a forward
    convolution (``conv_gradient``: up to 20x faster on small maps with many channels).
    The optimizer's and metrics' variables are created here (``build_training_state``),
    so ``fit`` traces its step once."""
    use_forward_input_gradients(model)
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=list(metrics or ["accuracy"]),
        jit_compile=jit_compile,
    )
    build_training_state(model)
    return model


def build_training_state(model: keras.Model) -> None:
    """Create the optimizer's and the metrics' variables now, before ``fit`` traces its step.

    Keras creates them now itself only under a distribution strategy (its symbolic build).
    Otherwise the first trace of the train step creates them, and ``tf.function`` traces
    the step a second time: about a second of every ``fit`` on two cores. A model with
    several outputs, or an output size known only from its input, is left to Keras."""
    if (tf.distribute.has_strategy() or len(model.outputs) != 1
            or None in model.output_shape[1:]):
        return
    model.optimizer.build(model.trainable_variables)
    prediction = np.zeros((1, *model.output_shape[1:]), "float32")
    labels = np.zeros((1, *model.output_shape[1:-1]), "int64")  # sparse, as the loss takes
    model.compute_metrics(None, labels, prediction)
    model.reset_metrics()  # that made-up example counts nowhere


def is_segmenter(architecture: str) -> bool:
    """Whether ``architecture`` predicts a class per pixel (``task="segmentation"``)."""
    return ARCHITECTURES.metadata(architecture).get("task") == "segmentation"


def task_metrics(architecture: str, num_classes: int) -> list:
    """Accuracy; a ``task="segmentation"`` architecture adds per-pixel mean IoU.

    Its targets are (h, w) integer masks, so the loss and accuracy apply per pixel.
    """
    if is_segmenter(architecture):
        return ["accuracy", keras.metrics.MeanIoU(num_classes, sparse_y_pred=False,
                                                  name="mean_iou")]
    return ["accuracy"]


def check_labels_fit_task(architecture: str, datasets) -> None:
    """A per-pixel model needs (height, width) masks; a classifier needs one label per image."""
    per_pixel = is_segmenter(architecture)
    label_rank = len(datasets.train.element_spec[1].shape) - 1
    if per_pixel and label_rank != 2:
        raise ValueError(
            f"{architecture} predicts a class per pixel and needs (height, width) label masks; "
            f"dataset {datasets.spec!r} gives one label per image. Use a mask dataset such as "
            f"segmentation:{datasets.spec}.")
    if not per_pixel and label_rank != 0:
        raise ValueError(
            f"{architecture} predicts one class per image, but dataset {datasets.spec!r} gives "
            f"labels of rank {label_rank}. Use a classification dataset such as digits.")


def build_model(config: ExperimentConfig, input_shape, num_classes: int) -> keras.Model:
    model = cnnkeras.build(config.model.architecture, input_shape=input_shape,
                           num_classes=num_classes, **dict(config.model.options))
    return compile_model(model, optimizer=config.train.optimizer,
                         learning_rate=config.train.learning_rate,
                         jit_compile=config.runtime.jit_compile,
                         metrics=task_metrics(config.model.architecture, num_classes))


def model_facts(model: keras.Model) -> dict:
    """What every run records about its model: parameter count and FLOPs per image."""
    from cnnkeras.inspection.analysis import model_flops

    return {"parameters": model.count_params(), "flops_per_image": model_flops(model)}


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=110)
    return "\n".join(lines)
