"""The training loop for multi-worker runs: a custom step under ``strategy.run``.

Keras 3's ``Model.fit`` stops at its first step under
``MultiWorkerMirroredStrategy`` ("Attempt to convert a value (PerReplica...) to
a Tensor", keras-team/keras#20585), so multi-worker runs fit here instead. Each
replica takes its shard of every global batch from
``strategy.experimental_distribute_dataset``, computes the loss in float32 as
the sum over its examples divided by the examples in the whole global batch,
and the Keras optimizer all-reduces (sums) the gradients across replicas before
applying them, so every worker holds the same weights after every step. The
loop works under any strategy; only the multi-worker one needs it.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from typing import Iterator, Optional, Sequence

import keras
import tensorflow as tf

from cnnkeras.training import checkpoints

SUM = tf.distribute.ReduceOp.SUM
# What a collective raises on the survivors when a peer dies (TensorFlow's heartbeat check
# aborts the collectives within seconds) or the cluster is torn down around it.
PEER_LOST = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
             tf.errors.AbortedError, tf.errors.CancelledError)


class WorkerLost(ValueError):
    """A worker of the cluster stopped mid-training; one line says which and what to do.

    The process should leave at once after saying so (``leave_at_once``): the aborted
    collectives leave TensorFlow's thread pools broken, and their teardown at exit
    prints a traceback of its own.
    """

    leave_at_once = True


@contextlib.contextmanager
def survivors_explain() -> Iterator[None]:
    """Turn a collective aborted by a lost peer into ``WorkerLost`` (one line, no traceback)."""
    try:
        yield
    except PEER_LOST as err:
        text = str(err)
        _, _, named = text.partition("unhealthy")  # TensorFlow lists the silent tasks after it
        lost = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", named)))
        who = ", ".join(lost) if lost else text.strip().splitlines()[0][:200]
        raise WorkerLost(
            f"the cluster lost a worker ({type(err).__name__}: {who}). Run the same command "
            "on every worker again to resume from the last finished epoch's backup.") from None


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
        epochs: int, checkpoint: Optional[checkpoints.EpochCheckpoint] = None,
        callbacks: Sequence = ()) -> dict:
    """Train ``model`` (compiled, built under ``strategy``) up to ``epochs``.

    Starts after the epochs ``checkpoint`` holds (restored or 0) and saves it after each
    epoch. Returns the history of the epochs run here: loss, accuracy, examples, val_*.
    """
    train_step, eval_step = make_train_step(model, strategy), make_eval_step(model, strategy)
    train = strategy.experimental_distribute_dataset(train)
    validation = strategy.experimental_distribute_dataset(validation) if validation else None
    record = keras.callbacks.History()  # the logs as callbacks left them (learning_rate too)
    hooks = keras.callbacks.CallbackList([*callbacks, record], model=model)
    model.stop_training = False
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
        if model.stop_training:
            break
    hooks.on_train_end()
    return record.history


def evaluate(model: keras.Model, strategy: tf.distribute.Strategy, dataset) -> dict:
    """Loss and accuracy over a batched dataset, every worker evaluating its shard."""
    totals = run_epoch(make_eval_step(model, strategy),
                       strategy.experimental_distribute_dataset(dataset))
    return {"loss": totals["loss"], "accuracy": totals["accuracy"]}
