"""One training run, end to end: data, model, fit, evaluate, save, and all that MLflow records.

``train_experiment`` is the one orchestrator. The route that fits and evaluates
(``loops.KerasFit`` or, across worker processes, ``loops.CustomLoop``) is its only
variable part; whatever the route, a run records the same things: the resolved
config before training starts, per-epoch metrics, test metrics, parameters and
FLOPs, the model summary, skipped files, learning curves, the confusion matrix,
the first-layer filters and the saved model. Only the chief of a cluster logs and
saves; the other workers save into a temporary folder and log nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

import cnnkeras
from cnnkeras import data, distribute, tracking
from cnnkeras.architectures.blocks import PIXEL_RANGE
from cnnkeras.config import ExperimentConfig, flatten, to_json
from cnnkeras.inspection import viz
from cnnkeras.tracking import models as tracked_models
from cnnkeras.tracking import schema
from cnnkeras.training import checkpoints
from cnnkeras.training.compile import (
    build_model,
    check_labels_fit_task,
    model_facts,
    schedule_callbacks,
    summary_text,
)
from cnnkeras.training.loops import loop_for

NOT_PER_EPOCH = ("train_seconds", "images_per_second")


@dataclass(frozen=True)
class TrainResult:
    model: keras.Model
    history: dict
    test_metrics: dict
    model_uri: str  # the logged MLflow model, models:/<id> ("" on a worker, not the chief)
    run_id: str  # "" on a worker that is not the chief
    registered: str = ""  # models:/NAME/VERSION when registered


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


def run_name(config: ExperimentConfig, suffix: str = "") -> str:
    name = f"{config.model.architecture} {config.data.dataset.split(':')[0]}"
    return f"{name} {suffix}".strip()


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


def first_layer_is_2d_conv(model: keras.Model) -> bool:
    """Whether the model's first convolution has image filters (a 4-D kernel) to draw."""
    try:
        return len(viz.first_conv_layer(model).kernel.shape) == 4
    except ValueError:
        return False


def open_run(config: ExperimentConfig, loop, resumed: int, tags: Optional[dict]):
    """The chief's MLflow run: the interrupted one reopened when resuming, else a new one."""
    exp_id = tracking.experiment_id(config.mlflow_experiment)
    suffix = "multi-worker" if loop.route == "custom_loop" else ""
    run = checkpoints.continue_run(loop.root, resumed) or tracking.create_run(
        exp_id, name=run_name(config, suffix), tags={
            schema.ARCHITECTURE_TAG: config.model.architecture,
            schema.DATASET_TAG: config.data.dataset, schema.KIND_TAG: schema.TRAIN,
            schema.ROUTE_TAG: loop.route, **(tags or {})})
    checkpoints.remember_run(loop.root, run.run_id)
    run.set_tags({schema.RESUMED_TAG: resumed})
    return run


def log_start(run, config: ExperimentConfig, strategy, datasets, model) -> None:
    """What is known before the first step: config, data, model and where it trains."""
    run.log_params(flatten(config))
    run.log_dict(json.loads(to_json(config)), "config.json")
    run.log_datasets(datasets.facts)  # the runs table's Dataset column, one entry per split
    run.log_params({
        "replicas": strategy.num_replicas_in_sync,
        "workers": max(1, distribute.cluster_size(distribute.read_tf_config())),
        "global_batch_size": distribute.global_batch_size(config.train.batch_size, strategy),
        "precision": keras.mixed_precision.global_policy().name,
        **{f"data.size.{k}": v for k, v in datasets.sizes.items()},
        "data.skipped_files": len(datasets.skipped_files),
        **model_facts(model),
    })
    if datasets.skipped_files:
        run.log_text("\n".join(datasets.skipped_files), "data/skipped_files.txt")
    run.log_text(summary_text(model), "model_summary.txt")


def whole_history(run, history: dict, resumed: int) -> dict:
    """Every epoch of the run: after a resume, the earlier ones are read back from MLflow."""
    if not resumed:
        return history
    keys = history.keys() or [k for k in run.client.get_run(run.run_id).data.metrics
                              if not k.startswith("test_") and k not in NOT_PER_EPOCH]
    return {key: [value for _, value in tracking.metric_history(run.run_id, key)]
            for key in keys}


def log_results(run, model, datasets, history: dict, test_metrics: dict, folder: Path) -> None:
    """Test metrics, learning curves, confusion matrix and first-layer filters."""
    run.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
    truths, predictions = predict_labels(model, datasets.test)
    matrix = viz.confusion_matrix(truths, predictions, datasets.num_classes)
    run.log_artifact(viz.plot_learning_curves(history, folder / "learning_curves.png"), "plots")
    run.log_artifact(viz.plot_confusion_matrix(matrix, datasets.class_names,
                                               folder / "confusion_matrix.png"), "plots")
    if first_layer_is_2d_conv(model):
        run.log_artifact(viz.plot_filters(model, folder / "filters.png"), "plots")


def early_stopping(config: ExperimentConfig) -> list:
    if not config.train.early_stopping_patience:
        return []
    return [keras.callbacks.EarlyStopping(patience=config.train.early_stopping_patience,
                                          restore_best_weights=True)]


def train_experiment(config: ExperimentConfig, strategy: Optional[tf.distribute.Strategy] = None,
                     *, tags: Optional[dict] = None, callbacks: tuple = ()) -> TrainResult:
    """Train ``config`` end to end: data, model under the strategy, fit, evaluate, save, log.

    The model is built (so bad options fail) before any MLflow run or backup folder
    exists, and the backup is removed only once the model is saved and logged. A config
    with a ``transfer`` section runs the two-phase recipe of ``cnnkeras.transfer``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if config.transfer is not None:
        from cnnkeras.transfer import run_transfer  # it imports this module: not at the top

        return run_transfer(config, strategy, tags=tags, callbacks=callbacks)
    if distribute.is_chief(strategy):
        tracking.check_store()  # a store that cannot take the run fails first, in one line
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    datasets = load_data(config, distribute.global_batch_size(config.train.batch_size, strategy))
    check_labels_fit_task(config.model.architecture, datasets)
    with strategy.scope():
        model = build_model(config, datasets.input_shape, datasets.num_classes)
    loop = loop_for(strategy, checkpoints.backup_dir(config))
    with checkpoints.claim(loop.directory):
        with strategy.scope():
            resumed = loop.restore(model)
        chief = distribute.is_chief(strategy)
        run = open_run(config, loop, resumed, tags) if chief else None
        with (tracking.active(run) if chief else contextlib.nullcontext()), \
                tracking.artifact_dir() as folder:
            if chief:
                log_start(run, config, strategy, datasets, model)
            history, test_metrics = fit_and_evaluate(loop, model, config, datasets, run,
                                                     callbacks)
            if chief:
                history = whole_history(run, history, resumed)
                log_results(run, model, datasets, history, test_metrics, folder)
                model_uri = log_model(run, model, datasets)
            else:
                model_uri = save_elsewhere(model, folder)
        checkpoints.remove(loop.root if chief else loop.directory)
    return TrainResult(model, history, test_metrics, model_uri, run.run_id if chief else "")


def fit_and_evaluate(loop, model, config, datasets, run, callbacks) -> tuple[dict, dict]:
    """The route's fit and test evaluation; the chief's ``run`` gets epochs and speed."""
    train = config.train
    started = time.perf_counter()
    history = loop.fit(model, datasets, epochs=train.epochs, verbose=config.runtime.verbose,
                       callbacks=[*schedule_callbacks(train.lr_schedule, train.learning_rate,
                                                      train.epochs),  # before the rate's logging
                                  *([run.callback()] if run else []), *early_stopping(config),
                                  *callbacks])
    seconds = time.perf_counter() - started
    if run:
        images = datasets.sizes["train"] * len(history.get("loss", []))
        run.log_metrics({"train_seconds": seconds,
                         "images_per_second": images / max(seconds, 1e-9)})
    return history, loop.evaluate(model, datasets.test)


def example_images(dataset: tf.data.Dataset, count: int = 2) -> np.ndarray:
    """The first ``count`` images of a batched (image, label) dataset, as the model takes them."""
    images, _ = next(iter(dataset))
    return np.asarray(images[:count])


def log_model(run, model: keras.Model, datasets) -> str:
    """The model as the run's MLflow model (its only copy): class names, input (pixels in
    [0, 255], scaled by the model's own ``pixels`` layer) and an example of two test images
    travel with it. Returns its ``models:/<id>`` URI."""
    return tracked_models.log_model(run, model, class_names=datasets.class_names,
                                     input_example=example_images(datasets.test),
                                     input_range=PIXEL_RANGE)


def register(result: TrainResult, name: str) -> TrainResult:
    """``result``'s model as a new version of registered model ``name``."""
    uri = tracked_models.register(result.model_uri, name, run_id=result.run_id, tags={
        "run_id": result.run_id, **{k: f"{v:.4f}" for k, v in result.test_metrics.items()}})
    return dataclasses.replace(result, registered=uri)


def save_elsewhere(model: keras.Model, folder: Path) -> str:
    """A non-chief worker saves too (TensorFlow's rule), into a folder that is then dropped."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model.save(Path(scratch) / "model.keras")
    return ""
