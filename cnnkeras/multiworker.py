"""Training across worker processes: a custom step under ``strategy.run``.

Keras 3's ``Model.fit`` stops at its first step under
``MultiWorkerMirroredStrategy`` ("Attempt to convert a value (PerReplica...) to
a Tensor", keras-team/keras#20585), so ``training.train_experiment`` hands
multi-worker runs to this module. Each replica takes its shard of every global
batch from ``strategy.experimental_distribute_dataset``, computes the loss in
float32 as the sum over its examples divided by the examples in the whole
global batch, and the Keras optimizer all-reduces (sums) the gradients across
replicas before applying them, so every worker holds the same weights after
every step. The loop works under any strategy; only the multi-worker one needs it.

Only the chief logs to MLflow and saves the model; the other workers save to a
temporary folder (TensorFlow's rule that every worker takes part in saving) and
log nothing. Every epoch ends with an ``EpochCheckpoint``, so a killed worker or
chief resumes from the last finished epoch when the command is run again.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import keras
import tensorflow as tf

from cnnkeras import backup, distribute, tracking, training, viz
from cnnkeras.config import ExperimentConfig, flatten, to_json

SUM = tf.distribute.ReduceOp.SUM


def replica_totals(labels, probabilities):
    """Float32 cross-entropy and correctness per target (an image's class, or a pixel's)."""
    probabilities = tf.cast(probabilities, tf.float32)
    losses = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
    right = tf.equal(tf.argmax(probabilities, axis=-1), tf.cast(labels, tf.int64))
    return losses, tf.cast(right, tf.float32)


def counts(labels):
    """Targets (labels' elements: one per image, or one per pixel) and images in a shard."""
    return tf.cast(tf.size(labels), tf.float32), tf.cast(tf.shape(labels)[0], tf.float32)


def make_train_step(model: keras.Model, strategy: tf.distribute.Strategy):
    """``step(distributed_batch) -> [loss sum, correct, targets, images]`` over all replicas.

    A model compiled with ``jit_compile=True`` gets its replica arithmetic XLA-compiled.
    """
    optimizer = model.optimizer

    def gradients(images, labels, global_targets):
        with tf.GradientTape() as tape:
            losses, right = replica_totals(labels, model(images, training=True))
            loss = tf.reduce_sum(losses) / global_targets
            if model.losses:
                loss += tf.nn.scale_regularization_loss(
                    tf.add_n([tf.cast(x, tf.float32) for x in model.losses]))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        return grads, tf.reduce_sum(losses), tf.reduce_sum(right)

    if model.jit_compile is True:  # XLA for the replica's arithmetic, not the all-reduce
        gradients = tf.function(gradients, jit_compile=True)

    def replica_step(images, labels):
        context = tf.distribute.get_replica_context()
        targets, examples = counts(labels)
        global_targets = context.all_reduce(SUM, targets)
        grads, loss_sum, right = gradients(images, labels, tf.maximum(global_targets, 1.0))
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return context.all_reduce(SUM, tf.stack([loss_sum, right, targets, examples]))

    @tf.function(reduce_retracing=True)
    def step(batch):
        return strategy.experimental_local_results(strategy.run(replica_step, args=batch))[0]

    return step


def make_eval_step(model: keras.Model, strategy: tf.distribute.Strategy):
    """Like ``make_train_step`` without the update: totals over all replicas' shards."""

    def replica_step(images, labels):
        losses, right = replica_totals(labels, model(images, training=False))
        totals = tf.stack([tf.reduce_sum(losses), tf.reduce_sum(right), *counts(labels)])
        return tf.distribute.get_replica_context().all_reduce(SUM, totals)

    @tf.function(reduce_retracing=True)
    def step(batch):
        return strategy.experimental_local_results(strategy.run(replica_step, args=batch))[0]

    return step


def run_epoch(step, dataset) -> dict:
    """Mean loss and accuracy per target over one pass, and the images all replicas saw."""
    totals = tf.zeros(4)
    for batch in dataset:
        totals += step(batch)
    loss_sum, right, targets, examples = totals.numpy().astype("float64")
    targets = max(targets, 1.0)
    return {"loss": loss_sum / targets, "accuracy": right / targets, "examples": int(examples)}


def check_agreement(strategy: tf.distribute.Strategy, epoch: int) -> None:
    """Every worker must resume from the same epoch, or their collectives would not line up."""

    @tf.function
    def gather():
        def replica():
            mine = tf.constant([epoch, epoch * epoch, 1.0], tf.float64)
            return tf.distribute.get_replica_context().all_reduce(SUM, mine)
        return strategy.experimental_local_results(strategy.run(replica))[0]

    total, squares, count = gather().numpy()
    if count * squares != total * total:
        raise ValueError(
            f"Workers restored backups of different epochs (this one: {epoch}, mean "
            f"{total / count:.2f}); keep the backup folder on storage that survives restarts, "
            "or delete it to start over.")


class EpochLine(keras.callbacks.Callback):
    """One line per epoch on stdout: metrics and seconds (the custom loop's progress)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        shown = " - ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "examples")
        print(f"epoch {epoch + 1}/{self.epochs} - {shown} - "
              f"{time.perf_counter() - self.started:.1f}s", file=sys.stdout, flush=True)


def fit(model: keras.Model, strategy: tf.distribute.Strategy, train, validation=None, *,
        epochs: int, checkpoint: Optional[backup.EpochCheckpoint] = None,
        callbacks: Sequence = ()) -> dict:
    """Train ``model`` (compiled, built under ``strategy``) up to ``epochs``.

    Starts after the epochs ``checkpoint`` holds (restored or 0) and saves it after each
    epoch. Returns the history of the epochs run here: loss, accuracy, examples, val_*.
    """
    train_step, eval_step = make_train_step(model, strategy), make_eval_step(model, strategy)
    train = strategy.experimental_distribute_dataset(train)
    validation = strategy.experimental_distribute_dataset(validation) if validation else None
    hooks = keras.callbacks.CallbackList(list(callbacks), model=model)
    model.stop_training = False
    history: dict = {}
    hooks.on_train_begin()
    for epoch in range(int(checkpoint.epoch.numpy()) if checkpoint else 0, epochs):
        hooks.on_epoch_begin(epoch)
        logs = run_epoch(train_step, train)
        if validation is not None:
            logs.update({f"val_{k}": v for k, v in run_epoch(eval_step, validation).items()
                         if k != "examples"})
        if checkpoint is not None:
            checkpoint.save(epoch + 1)
        hooks.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if model.stop_training:
            break
    hooks.on_train_end()
    return history


def evaluate(model: keras.Model, strategy: tf.distribute.Strategy, dataset) -> dict:
    """Loss and accuracy over a batched dataset, every worker evaluating its shard."""
    totals = run_epoch(make_eval_step(model, strategy),
                       strategy.experimental_distribute_dataset(dataset))
    return {"loss": totals["loss"], "accuracy": totals["accuracy"]}


def early_stopping(config: ExperimentConfig) -> list:
    if not config.train.early_stopping_patience:
        return []
    return [keras.callbacks.EarlyStopping(patience=config.train.early_stopping_patience,
                                          restore_best_weights=True)]


def open_run(config: ExperimentConfig, root: Path, resumed: int,
             tags: Optional[dict]) -> tracking.Run:
    """The chief's MLflow run: the interrupted one reopened when resuming, else a new one."""
    exp_id = tracking.experiment_id(config.mlflow_experiment)
    run = backup.continue_run(root, resumed) or tracking.create_run(
        exp_id, name=training.run_name(config, "multi-worker"), tags={
            "architecture": config.model.architecture, "dataset": config.data.dataset,
            "cnnkeras.kind": "train", "cnnkeras.route": "custom_loop", **(tags or {})})
    backup.remember_run(root, run.run_id)
    run.set_tags({"cnnkeras.resumed_from_epoch": resumed})
    return run


def log_start(run: tracking.Run, config: ExperimentConfig, strategy, datasets, model) -> None:
    run.log_params(flatten(config))
    run.log_dict(json.loads(to_json(config)), "config.json")
    run.log_params({
        "replicas": strategy.num_replicas_in_sync,
        "workers": max(1, distribute.cluster_size(distribute.read_tf_config())),
        "global_batch_size": distribute.global_batch_size(config.train.batch_size, strategy),
        "precision": keras.mixed_precision.global_policy().name,
        **{f"data.size.{k}": v for k, v in datasets.sizes.items()},
        **training.model_facts(model),
    })
    run.log_text(training.summary_text(model), "model_summary.txt")


def log_results(run, model, datasets, history: dict, test_metrics: dict, folder: Path) -> None:
    run.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
    truths, predictions = training.predict_labels(model, datasets.test)
    matrix = viz.confusion_matrix(truths, predictions, datasets.num_classes)
    run.log_artifact(viz.plot_learning_curves(history, folder / "learning_curves.png"), "plots")
    run.log_artifact(viz.plot_confusion_matrix(matrix, datasets.class_names,
                                               folder / "confusion_matrix.png"), "plots")


def train_experiment(config: ExperimentConfig, strategy: tf.distribute.Strategy, *,
                     tags: Optional[dict] = None,
                     callbacks: Sequence = ()) -> training.TrainResult:
    """``training.train_experiment`` for a strategy whose workers run in separate processes."""
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    chief = distribute.is_chief(strategy)
    datasets = training.load_data(
        config, distribute.global_batch_size(config.train.batch_size, strategy))
    training.check_labels_fit_task(config.model.architecture, datasets)
    root = backup.backup_dir(config)
    with strategy.scope():
        model = training.build_model(config, datasets.input_shape, datasets.num_classes)
        checkpoint = backup.EpochCheckpoint(backup.write_dir(root, strategy),
                                            model=model, optimizer=model.optimizer)
        resumed = checkpoint.restore()
    check_agreement(strategy, resumed)
    run = open_run(config, root, resumed, tags) if chief else None
    with (tracking.active(run) if chief else contextlib.nullcontext()), \
            tracking.artifact_dir() as folder:
        if chief:
            log_start(run, config, strategy, datasets, model)
        hooks = [run.callback()] if chief else []
        if config.runtime.verbose:
            hooks.append(EpochLine(config.train.epochs))
        started = time.perf_counter()
        history = fit(model, strategy, datasets.train, datasets.validation,
                      epochs=config.train.epochs, checkpoint=checkpoint,
                      callbacks=[*hooks, *early_stopping(config), *callbacks])
        seconds = time.perf_counter() - started
        test_metrics = evaluate(model, strategy, datasets.test)
        if chief:
            examples = sum(history.get("examples", []))
            run.log_metrics({"train_seconds": seconds,
                             "images_per_second": examples / max(seconds, 1e-9)})
            log_results(run, model, datasets, history, test_metrics, folder)
            model_path = training.save_model(model, config, run.run_id)
            run.log_artifact(model_path, "model")
        else:
            model_path = save_elsewhere(model, folder)
    backup.remove(checkpoint.directory if not chief else root)
    return training.TrainResult(model, history, test_metrics, model_path,
                                run.run_id if chief else "")


def save_elsewhere(model: keras.Model, folder: Path) -> Path:
    """A non-chief worker saves too, into a temporary folder that is then dropped."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        path = Path(scratch) / "model.keras"
        model.save(path)
    return path
