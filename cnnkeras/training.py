"""Compile, fit, evaluate and save a model for an experiment config, tracked in MLflow."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

import cnnkeras
from cnnkeras import backup, data, distribute, tracking, viz
from cnnkeras.config import ExperimentConfig, flatten, to_json


@dataclass(frozen=True)
class TrainResult:
    model: keras.Model
    history: dict
    test_metrics: dict
    model_path: Path
    run_id: str


def model_input_shape(config: ExperimentConfig) -> tuple:
    """(height, width, channels) the data is fitted to: the config's, else the architecture's."""
    default = cnnkeras.default_input_shape(config.model.architecture)
    size = tuple(config.data.image_size or default[-3:-1])  # (frames, h, w, c) clips: h, w
    channels = config.data.channels or default[-1]
    return (*size, channels)


def load_data(config: ExperimentConfig, global_batch: int) -> data.Datasets:
    shape = model_input_shape(config)
    plan = data.SplitPlan(config.data.validation_fraction, config.data.test_fraction,
                          config.data.seed, config.data.limit)
    return data.load(config.data.dataset, image_size=shape[:2], channels=shape[2],
                     batch_size=global_batch, plan=plan, data_dir=config.data.data_dir,
                     fit=config.data.fit)


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


def compile_model(model: keras.Model, *, optimizer: str, learning_rate: float,
                  jit_compile: bool = False, metrics=None) -> keras.Model:
    """Sparse categorical cross-entropy and accuracy, the classifier default."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=list(metrics or ["accuracy"]),
        jit_compile=jit_compile,
    )
    return model


def task_metrics(architecture: str, num_classes: int) -> list:
    """Accuracy; a ``task="segmentation"`` architecture adds per-pixel mean IoU.

    Its targets are (h, w) integer masks, so the loss and accuracy apply per pixel.
    """
    from cnnkeras.registry import ARCHITECTURES

    if ARCHITECTURES.metadata(architecture).get("task") == "segmentation":
        return ["accuracy", keras.metrics.MeanIoU(num_classes, sparse_y_pred=False,
                                                  name="mean_iou")]
    return ["accuracy"]


def check_labels_fit_task(architecture: str, datasets: data.Datasets) -> None:
    """A per-pixel model needs (height, width) masks; a classifier needs one label per image."""
    from cnnkeras.registry import ARCHITECTURES

    per_pixel = ARCHITECTURES.metadata(architecture).get("task") == "segmentation"
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
    from cnnkeras.analysis import model_flops

    return {"parameters": model.count_params(), "flops_per_image": model_flops(model)}


def predict_labels(model: keras.Model, dataset: tf.data.Dataset):
    """True and predicted labels over a batched (image, label) dataset, in this process.

    A plain forward pass: under a strategy ``predict_on_batch`` hands the batch to every
    replica (MirroredStrategy returns each prediction once per replica) and all-gathers
    across workers (a hang when only the chief asks).
    """
    forward = tf.function(lambda images: tf.argmax(model(images, training=False), axis=-1),
                          reduce_retracing=True)
    truths, predictions = [], []
    for images, labels in dataset:
        truths.append(labels.numpy())
        predictions.append(forward(images).numpy())
    return np.concatenate(truths), np.concatenate(predictions)


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=110)
    return "\n".join(lines)


def run_name(config: ExperimentConfig, suffix: str = "") -> str:
    name = f"{config.model.architecture} {config.data.dataset.split(':')[0]}"
    return f"{name} {suffix}".strip()


def callbacks_for(config: ExperimentConfig, run: tracking.Run) -> list:
    callbacks = [run.callback(), backup.fit_callback(backup.backup_dir(config))]
    if config.train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            patience=config.train.early_stopping_patience, restore_best_weights=True))
    return callbacks


def log_evaluation(run: tracking.Run, model, datasets: data.Datasets, history: dict,
                   folder: Path) -> dict:
    """Test metrics, learning curves and confusion matrix into the run; returns test metrics."""
    test_metrics = model.evaluate(datasets.test, return_dict=True, verbose=0)
    run.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
    truths, predictions = predict_labels(model, datasets.test)
    matrix = viz.confusion_matrix(truths, predictions, datasets.num_classes)
    run.log_artifact(viz.plot_learning_curves(history, folder / "learning_curves.png"), "plots")
    run.log_artifact(viz.plot_confusion_matrix(matrix, datasets.class_names,
                                               folder / "confusion_matrix.png"), "plots")
    if first_layer_is_2d_conv(model):
        run.log_artifact(viz.plot_filters(model, folder / "filters.png"), "plots")
    return test_metrics


def first_layer_is_2d_conv(model: keras.Model) -> bool:
    """Whether the model's first convolution has image filters (a 4-D kernel) to draw."""
    try:
        return len(viz.first_conv_layer(model).kernel.shape) == 4
    except ValueError:
        return False


def train_experiment(config: ExperimentConfig, strategy: Optional[tf.distribute.Strategy] = None,
                     *, tags: Optional[dict] = None, callbacks: tuple = ()) -> TrainResult:
    """Train ``config`` end to end: data, model under the strategy, fit, evaluate, save, log."""
    strategy = strategy or tf.distribute.get_strategy()
    if distribute.is_multi_worker(strategy):  # fit fails there (keras-team/keras#20585)
        from cnnkeras import multiworker

        return multiworker.train_experiment(config, strategy, tags=tags, callbacks=callbacks)
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    datasets = load_data(config, distribute.global_batch_size(config.train.batch_size, strategy))
    check_labels_fit_task(config.model.architecture, datasets)
    exp_id = tracking.experiment_id(config.mlflow_experiment)
    resumed = backup.fit_resume_epoch(backup.backup_dir(config))
    run = backup.continue_run(backup.backup_dir(config), resumed) or tracking.create_run(
        exp_id, name=run_name(config), tags={
            "architecture": config.model.architecture, "dataset": config.data.dataset,
            "cnnkeras.kind": "train", **(tags or {})})
    backup.remember_run(backup.backup_dir(config), run.run_id)
    run.set_tags({"cnnkeras.resumed_from_epoch": resumed})
    with tracking.active(run), tracking.artifact_dir() as folder:
        run.log_params(flatten(config))
        run.log_dict(json.loads(to_json(config)), "config.json")
        run.log_params({
            "replicas": strategy.num_replicas_in_sync,
            "global_batch_size": distribute.global_batch_size(config.train.batch_size, strategy),
            "precision": keras.mixed_precision.global_policy().name,
            **{f"data.size.{k}": v for k, v in datasets.sizes.items()},
            "data.skipped_files": len(datasets.skipped_files),
        })
        if datasets.skipped_files:
            run.log_text("\n".join(datasets.skipped_files), "data/skipped_files.txt")
        with strategy.scope():
            model = build_model(config, datasets.input_shape, datasets.num_classes)
        run.log_params(model_facts(model))
        run.log_text(summary_text(model), "model_summary.txt")
        started = time.perf_counter()
        history = model.fit(datasets.train, validation_data=datasets.validation,
                            epochs=config.train.epochs, shuffle=False,
                            callbacks=[*callbacks_for(config, run), *callbacks],
                            verbose=config.runtime.verbose).history
        seconds = time.perf_counter() - started
        run.log_metrics({"train_seconds": seconds,
                         "images_per_second": datasets.sizes["train"] * len(history["loss"])
                         / max(seconds, 1e-9)})
        test_metrics = log_evaluation(run, model, datasets, history, folder)
        model_path = save_model(model, config, run.run_id)
        run.log_artifact(model_path, "model")
    return TrainResult(model, history, test_metrics, model_path, run.run_id)


def save_model(model: keras.Model, config: ExperimentConfig, run_id: str) -> Path:
    folder = Path(config.runtime.output_dir) / config.name / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    model.save(path)
    return path
