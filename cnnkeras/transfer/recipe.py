"""The two-phase recipe end to end: data, model, head training, fine-tuning, test, save, track.

An ``ExperimentConfig`` with a ``transfer`` section (``experiments/transfer.py``) runs
here when ``train_experiment`` is handed it. The data come from the one pipeline
(``cnnkeras.data``, pixels in [0, 255]); the model from the registered builder
(``inception_v3`` with ``frozen_base=True``), which scales them itself. One MLflow run
holds the whole recipe (the resolved config, what every training run records before it
starts, test metrics, plots, the saved model) with a nested run per phase (its learning
rate, trainable weights, per-epoch metrics and speed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import keras
import tensorflow as tf

import cnnkeras
from cnnkeras import data, distribute, tracking
from cnnkeras.architectures.inception import check_weights
from cnnkeras.config import ExperimentConfig, to_dict
from cnnkeras.inspection import viz
from cnnkeras.tracking import models as tracked_models
from cnnkeras.tracking import schema
from cnnkeras.training.compile import build_model, compile_model, schedule_callbacks
from cnnkeras.training.loops import validation
from cnnkeras.training.run import (
    TrainResult,
    early_stopping,
    load_data,
    log_model,
    log_start,
    model_input_shape,
    run_name,
)
from cnnkeras.transfer import bottleneck, evaluation
from cnnkeras.transfer import model as tmodel


@dataclass(frozen=True)
class TransferResult(TrainResult):
    """A training run's result (``history`` holds both phases' epochs), and per phase."""

    class_names: tuple = ()
    histories: dict = field(default_factory=dict)  # phase name -> keras history dict
    phase_run_ids: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What every phase shares."""

    model: keras.Model
    datasets: data.Datasets
    config: ExperimentConfig
    global_batch: int
    parent: tracking.Run
    callbacks: tuple


def fine_tune_epochs(config: ExperimentConfig) -> int:
    epochs = config.transfer.fine_tune_epochs
    return config.train.epochs if epochs is None else epochs


def preflight(config: ExperimentConfig, strategy: tf.distribute.Strategy) -> None:
    """Every mistake that needs no data, found before data is read or any run exists.

    One throw-away build at the configured input checks the options, the weights file,
    the base and ``fine_tune_from`` (ImageNet weights load once, with the real model).
    """
    if distribute.is_multi_worker(strategy):
        raise ValueError("the transfer recipe trains with model.fit on one machine. "
                         "Received: runtime.strategy=multi_worker")
    options = dict(config.model.options)
    if options.get("weights") == "imagenet":
        options["weights"] = None
    model = cnnkeras.build(config.model.architecture, input_shape=model_input_shape(config),
                           num_classes=2, **options)
    tmodel.check_layer(tmodel.base_of(model), config.transfer.fine_tune_from)


def load_datasets(config: ExperimentConfig, global_batch: int) -> data.Datasets:
    """The one pipeline's splits of ``config.data``; a split left empty is a clear error."""
    datasets = load_data(config, global_batch)
    empty = [name for name, count in datasets.sizes.items() if count == 0]
    if empty:
        raise ValueError(f"{config.data.dataset!r} leaves the {', '.join(empty)} split(s) empty "
                         f"(sizes {datasets.sizes}); use more images or other fractions.")
    return datasets


def compile_phase(model: keras.Model, config: ExperimentConfig, learning_rate: float):
    compile_model(model, optimizer=config.train.optimizer, learning_rate=learning_rate,
                  jit_compile=config.runtime.jit_compile)
    model.run_eagerly = config.transfer.run_eagerly


def log_speed(run: tracking.Run, images: int, started: float) -> None:
    seconds = time.perf_counter() - started
    run.log_metrics({"train_seconds": seconds, "images_per_second": images / max(seconds, 1e-9)})


def fit_phase(ctx: Context, run: tracking.Run, *, epochs: int, learning_rate: float) -> dict:
    compile_phase(ctx.model, ctx.config, learning_rate)
    started = time.perf_counter()
    history = ctx.model.fit(
        ctx.datasets.train, validation_data=validation(ctx.datasets), epochs=epochs,
        callbacks=[*schedule_callbacks(ctx.config.train.lr_schedule, learning_rate, epochs),
                   run.callback(), *early_stopping(ctx.config), *ctx.callbacks],
        shuffle=False, verbose=ctx.config.runtime.verbose).history
    log_speed(run, ctx.datasets.sizes["train"] * len(history.get("loss", [])), started)
    return history


def bottleneck_folder(ctx: Context) -> Path:
    """``OUTPUT_DIR/NAME/bottlenecks/<key>``: the key covers all that fixes the features."""
    config = ctx.config
    weights = config.model.options.get("weights")
    path = check_weights(weights, model_input_shape(config))
    key = bottleneck.cache_key(
        data=to_dict(config)["data"], sizes=ctx.datasets.sizes,
        classes=ctx.datasets.class_names, input_shape=ctx.datasets.input_shape,
        architecture=config.model.architecture, imagenet=weights == "imagenet",
        weights_sha1=bottleneck.file_fingerprint(path) if path else None)
    return Path(config.runtime.output_dir) / config.name / "bottlenecks" / key


def bottleneck_head(ctx: Context, run: tracking.Run) -> dict:
    """Phase 1 on cached features: base forward once per image, then the head alone."""
    folder = bottleneck_folder(ctx)
    extract = tmodel.forward(tmodel.feature_extractor(ctx.model),
                             eager=ctx.config.transfer.run_eagerly)
    width = ctx.model.get_layer("avg_pool").output.shape[-1]
    started = time.perf_counter()
    (train_x, train_y, hit), (val_x, val_y, _) = (
        bottleneck.cached(extract, getattr(ctx.datasets, split), folder / f"{split}.npz",
                          width=width) for split in ("train", "validation"))
    run.log_params({"bottleneck_cache": str(folder), "bottleneck_cache_hit": hit})
    run.log_metrics({"bottleneck_seconds": time.perf_counter() - started})
    head = tmodel.head_of(ctx.model)  # shares the model's head layers: they train here
    compile_phase(head, ctx.config, ctx.config.train.learning_rate)
    started = time.perf_counter()
    train = ctx.config.train
    history = head.fit(train_x, train_y, validation_data=(val_x, val_y),
                       batch_size=ctx.global_batch, epochs=train.epochs,
                       callbacks=[*schedule_callbacks(train.lr_schedule, train.learning_rate,
                                                      train.epochs),
                                  run.callback(), *early_stopping(ctx.config), *ctx.callbacks],
                       verbose=ctx.config.runtime.verbose).history
    log_speed(run, len(train_y) * len(history.get("loss", [])), started)
    return history


def open_phase(ctx: Context, phase: str, title: str) -> tracking.Run:
    exp_id = tracking.experiment_id(ctx.config.mlflow_experiment)
    run = tracking.create_run(exp_id, name=title, parent=ctx.parent.run_id, tags={
        schema.KIND_TAG: schema.TRANSFER, schema.PHASE_TAG: phase})
    run.log_datasets(ctx.datasets.facts, schema.FIT_SPLITS)  # what the phase trains on
    return run


def phase_one(ctx: Context) -> tuple[dict, str]:
    """The head on the frozen base (called in inference mode), or on its cached features."""
    config, run = ctx.config, open_phase(ctx, "head", "phase 1: head")
    bottlenecks = config.transfer.bottlenecks
    with tracking.active(run), tracking.artifact_dir() as folder:
        tmodel.freeze_base(tmodel.base_of(ctx.model))
        run.log_params({"phase": "head", "learning_rate": config.train.learning_rate,
                        "epochs": config.train.epochs, "bottlenecks": bottlenecks,
                        "augment": bool(config.model.options.get("augment")) and not bottlenecks,
                        "trainable_parameters": tmodel.trainable_count(ctx.model)})
        history = bottleneck_head(ctx, run) if bottlenecks else fit_phase(
            ctx, run, epochs=config.train.epochs, learning_rate=config.train.learning_rate)
        run.log_artifact(viz.plot_learning_curves(history, folder / "phase1_curves.png"), "plots")
    return history, run.run_id


def phase_two(ctx: Context) -> tuple[dict, str]:
    """The base from ``fine_tune_from`` on, batch normalisation still frozen, at a lower rate."""
    config, run = ctx.config, open_phase(ctx, "fine_tune", "phase 2: fine-tune")
    learning_rate = config.train.learning_rate * config.transfer.fine_tune_factor
    with tracking.active(run), tracking.artifact_dir() as folder:
        trained = tmodel.unfreeze_top(tmodel.base_of(ctx.model), config.transfer.fine_tune_from)
        run.log_params({"phase": "fine_tune", "learning_rate": learning_rate,
                        "epochs": fine_tune_epochs(config),
                        "fine_tune_from": config.transfer.fine_tune_from,
                        "trainable_parameters": tmodel.trainable_count(ctx.model),
                        "trainable_layers": len(trained)})
        run.log_text("\n".join(trained), "trainable_layers.txt")
        history = fit_phase(ctx, run, epochs=fine_tune_epochs(config),
                            learning_rate=learning_rate)
        run.log_artifact(viz.plot_learning_curves(history, folder / "phase2_curves.png"), "plots")
    return history, run.run_id


def log_test(ctx: Context, folder: Path) -> evaluation.Evaluation:
    predict = tmodel.forward(ctx.model, eager=ctx.config.transfer.run_eagerly)
    result = evaluation.evaluate(predict, ctx.datasets.test, ctx.datasets.class_names)
    run = ctx.parent
    run.log_metrics(result.metrics())
    run.log_text(result.report(), "evaluation/report.txt")
    run.log_dict({"class_names": list(result.class_names), "matrix": result.matrix.tolist()},
                 "evaluation/confusion_matrix.json")
    run.log_artifact(viz.plot_confusion_matrix(result.matrix, result.class_names,
                                               folder / "confusion_matrix.png"), "plots")
    run.log_artifact(evaluation.plot_misclassified(result, folder / "misclassified.png"),
                     "plots")
    return result


def save(ctx: Context, tested: evaluation.Evaluation) -> tuple[str, str]:
    """The model as the run's MLflow model (its only copy, class names and input range in
    its metadata), registered under the experiment's name: (models:/<id>, models:/NAME/V)."""
    config, run = ctx.config, ctx.parent
    if not ctx.model.optimizer.built:  # bottlenecks alone: saved as it reloads, no warning
        ctx.model.optimizer.build(ctx.model.trainable_variables)
    model_uri = log_model(run, ctx.model, ctx.datasets)
    registered = tracked_models.register(model_uri, config.mlflow_experiment, run_id=run.run_id,
                                         tags={"run_id": run.run_id,
                                               "test_accuracy": f"{tested.accuracy:.4f}"})
    return model_uri, registered


def run_transfer(config: ExperimentConfig, strategy: Optional[tf.distribute.Strategy] = None,
                 *, tags: Optional[dict] = None,
                 callbacks: Sequence[keras.callbacks.Callback] = ()) -> TransferResult:
    """Run ``config``'s recipe; ``callbacks`` are added to both phases' ``fit``."""
    strategy = strategy or tf.distribute.get_strategy()
    preflight(config, strategy)
    tracking.check_store()  # a store that cannot take the run fails first, in one line
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    global_batch = distribute.global_batch_size(config.train.batch_size, strategy)
    datasets = load_datasets(config, global_batch)
    with strategy.scope():
        model = build_model(config, datasets.input_shape, datasets.num_classes)
    parent = tracking.create_run(
        tracking.experiment_id(config.mlflow_experiment), name=run_name(config, "transfer"),
        tags={schema.ARCHITECTURE_TAG: config.model.architecture,
              schema.DATASET_TAG: config.data.dataset, schema.KIND_TAG: schema.TRANSFER,
              **(tags or {})})
    ctx = Context(model, datasets, config, global_batch, parent, tuple(callbacks))
    phases = [("head", phase_one)] + ([("fine_tune", phase_two)]
                                      if fine_tune_epochs(config) else [])
    histories, phase_runs = {}, {}
    with tracking.active(parent), tracking.artifact_dir() as folder:
        log_start(parent, config, strategy, datasets, model)
        for name, phase in phases:
            with strategy.scope():
                histories[name], phase_runs[name] = phase(ctx)
        result = log_test(ctx, folder)
        model_uri, registered = save(ctx, result)
    history = {key: [v for h in histories.values() for v in h.get(key, [])]
               for key in histories["head"]}
    return TransferResult(model, history, {"loss": result.loss, "accuracy": result.accuracy},
                          model_uri, parent.run_id, registered, class_names=datasets.class_names,
                          histories=histories, phase_run_ids=phase_runs)


def describe(result: TransferResult) -> str:
    """The few lines a command-line user wants after a run."""
    metrics = result.test_metrics
    return "\n".join([
        f"test accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}",
        f"MLflow run: {result.run_id} (phases: {json.dumps(result.phase_run_ids)})",
        f"model: runs:/{result.run_id}/model, registered as {result.registered}",
        f"try it: cnnkeras predict {result.registered} YOUR_PHOTO.jpg",
    ])
