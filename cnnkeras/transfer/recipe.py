"""The two-phase recipe end to end: data, model, head training, fine-tuning, test, save, track.

One MLflow run holds the whole recipe (configuration, test metrics, plots, the
saved model) with a nested run per phase (its learning rate, trainable weights,
per-epoch metrics and speed).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import keras
import tensorflow as tf

from cnnkeras import data, tracking
from cnnkeras.data import images, pipeline
from cnnkeras.inspection import viz
from cnnkeras.training import compile_model, summary_text
from cnnkeras.transfer import bottleneck, evaluation, saving
from cnnkeras.transfer import model as tmodel


@dataclass(frozen=True)
class TransferConfig:
    """Everything one transfer run depends on; checked when made."""

    data: str = "tf_flowers"
    data_dir: Optional[str] = None
    weights: Optional[str] = "imagenet"  # "imagenet", None/"none", or a weights file
    image_size: int = 299
    epochs: int = 10  # phase 1: the head on the frozen base
    fine_tune_epochs: Optional[int] = None  # phase 2; None: same as epochs, 0: skip
    batch_size: int = 32  # per replica
    learning_rate: float = 1e-3
    fine_tune_factor: float = 0.1  # phase 2 learning rate = learning_rate * this
    fine_tune_from: str = "mixed7"
    dropout: float = 0.2
    augment: bool = True
    bottlenecks: bool = False  # phase 1 on cached base features (no augmentation)
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    limit: Optional[int] = None  # at most this many images per split
    seed: int = 1337
    output_dir: str = "runs/transfer"
    experiment: str = "cnnkeras-transfer"
    verbose: int = 2
    run_eagerly: bool = False  # skips graph tracing (~10 s per phase on a CPU): tiny runs only

    def __post_init__(self):
        tmodel.check_image_size(self.image_size)
        for key in ("epochs", "batch_size", "learning_rate", "fine_tune_factor"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive. Received: {getattr(self, key)!r}")
        if self.fine_tune_epochs is not None and self.fine_tune_epochs < 0:
            raise ValueError(f"fine_tune_epochs must be >= 0 (0 skips fine-tuning). "
                             f"Received: {self.fine_tune_epochs!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1). Received: {self.dropout!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive. Received: {self.limit!r}")
        if not (0 < self.validation_fraction and 0 < self.test_fraction
                and self.validation_fraction + self.test_fraction < 1):
            raise ValueError(
                "validation_fraction and test_fraction must be positive and leave training "
                f"data. Received: {self.validation_fraction}, {self.test_fraction}")

    @property
    def phase2_epochs(self) -> int:
        return self.epochs if self.fine_tune_epochs is None else self.fine_tune_epochs


@dataclass(frozen=True)
class TransferResult:
    model: keras.Model
    class_names: tuple
    histories: dict  # phase name -> keras history dict
    test_metrics: dict
    model_path: Path
    run_id: str
    phase_run_ids: dict


@dataclass(frozen=True)
class Splits:
    """A source's splits and how to batch them as float pixels in [0, 255]."""

    source: data.Source
    image_size: int
    batch_size: int
    seed: int

    def batches(self, split: str, *, shuffle: bool = False) -> tf.data.Dataset:
        size = (self.image_size, self.image_size)
        dataset = getattr(self.source, split).map(
            lambda x, y: (images.fit_image(x, size=size, channels=3, fit="resize"), y),
            num_parallel_calls=tf.data.AUTOTUNE).cache()
        if shuffle:
            dataset = dataset.shuffle(pipeline.SHUFFLE_BUFFER, seed=self.seed,
                                      reshuffle_each_iteration=True)
        return dataset.batch(self.batch_size).map(
            lambda x, y: (tf.cast(x, tf.float32), y),
            num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_splits(config: TransferConfig, global_batch: int) -> Splits:
    """The seeded train/validation/test splits of ``config.data`` (any RGB-able source)."""
    plan = data.SplitPlan(config.validation_fraction, config.test_fraction, config.seed,
                          config.limit)
    source = data.load_source(config.data, plan, config.data_dir)
    if source.num_classes < 2:
        raise ValueError(f"{config.data!r} has {source.num_classes} class; a classifier "
                         "needs at least two.")
    empty = [name for name, count in source.sizes.items() if count == 0]
    if empty:
        raise ValueError(f"{config.data!r} leaves the {', '.join(empty)} split(s) empty "
                         f"(sizes {source.sizes}); use more images or other fractions.")
    return Splits(source, config.image_size, global_batch, config.seed)


def compile_for(model: keras.Model, config: TransferConfig, learning_rate: float):
    compile_model(model, optimizer="adam", learning_rate=learning_rate)
    model.run_eagerly = config.run_eagerly
    return model


def fit_phase(model, splits: Splits, config: TransferConfig, *, epochs: int,
              learning_rate: float, run: tracking.Run, callbacks: Sequence) -> dict:
    compile_for(model, config, learning_rate)
    started = time.perf_counter()
    history = model.fit(splits.batches("train", shuffle=True),
                        validation_data=splits.batches("validation"), epochs=epochs,
                        callbacks=[run.callback(), *callbacks], shuffle=False,
                        verbose=config.verbose).history
    seconds = time.perf_counter() - started
    run.log_metrics({"train_seconds": seconds, "images_per_second":
                     splits.source.sizes["train"] * epochs / max(seconds, 1e-9)})
    return history


def bottleneck_head(model, splits: Splits, config: TransferConfig, run: tracking.Run,
                    callbacks: Sequence) -> dict:
    """Phase 1 on cached features: base forward once per image, then the head alone."""
    weights = tmodel.resolve_weights(config.weights)
    key = bottleneck.cache_key(
        data=config.data, data_dir=config.data_dir, limit=config.limit, seed=config.seed,
        fractions=(config.validation_fraction, config.test_fraction),
        sizes=splits.source.sizes, classes=splits.source.class_names,
        image_size=config.image_size, weights=weights, weights_sha1=(
            bottleneck.file_fingerprint(weights) if weights not in (None, "imagenet") else None))
    folder = Path(config.output_dir) / "bottlenecks" / key
    extractor = tmodel.feature_extractor(model)
    extractor.run_eagerly = config.run_eagerly
    started = time.perf_counter()
    (train_x, train_y, hit), (val_x, val_y, _) = (
        bottleneck.cached(extractor, splits.batches(split), folder / f"{split}.npz")
        for split in ("train", "validation"))
    run.log_params({"bottleneck_cache": str(folder), "bottleneck_cache_hit": hit})
    run.log_metrics({"bottleneck_seconds": time.perf_counter() - started})
    head = tmodel.build_head(model.output_shape[-1], dropout=config.dropout)
    compile_for(head, config, config.learning_rate)
    history = head.fit(train_x, train_y, validation_data=(val_x, val_y),
                       batch_size=splits.batch_size, epochs=config.epochs,
                       callbacks=[run.callback(), *callbacks], verbose=config.verbose).history
    layer = model.get_layer("predictions")
    layer.set_weights(head.get_layer("predictions").get_weights())
    return history


def trainable_count(model: keras.Model) -> int:
    return int(sum(int(tf.size(w)) for w in model.trainable_weights))


def phase_one(model, splits, config, *, exp_id, parent, callbacks):
    run = tracking.create_run(exp_id, name="phase 1: head", parent=parent.run_id,
                              tags={"cnnkeras.kind": "transfer", "cnnkeras.phase": "head"})
    with tracking.active(run), tracking.artifact_dir() as folder:
        tmodel.freeze_base(model.get_layer("inception_v3"))
        run.log_params({"phase": "head", "learning_rate": config.learning_rate,
                        "epochs": config.epochs, "bottlenecks": config.bottlenecks,
                        "augment": config.augment and not config.bottlenecks,
                        "trainable_parameters": trainable_count(model)})
        if config.bottlenecks:
            history = bottleneck_head(model, splits, config, run, callbacks)
        else:
            history = fit_phase(model, splits, config, epochs=config.epochs,
                                learning_rate=config.learning_rate, run=run,
                                callbacks=callbacks)
        run.log_artifact(viz.plot_learning_curves(history, folder / "phase1_curves.png"), "plots")
    return history, run.run_id


def phase_two(model, splits, config, *, exp_id, parent, callbacks):
    run = tracking.create_run(exp_id, name="phase 2: fine-tune", parent=parent.run_id,
                              tags={"cnnkeras.kind": "transfer", "cnnkeras.phase": "fine_tune"})
    learning_rate = config.learning_rate * config.fine_tune_factor
    with tracking.active(run), tracking.artifact_dir() as folder:
        trained = tmodel.unfreeze_top(model.get_layer("inception_v3"), config.fine_tune_from)
        run.log_params({"phase": "fine_tune", "learning_rate": learning_rate,
                        "epochs": config.phase2_epochs, "fine_tune_from": config.fine_tune_from,
                        "trainable_parameters": trainable_count(model),
                        "trainable_layers": len(trained)})
        run.log_text("\n".join(trained), "trainable_layers.txt")
        history = fit_phase(model, splits, config, epochs=config.phase2_epochs,
                            learning_rate=learning_rate, run=run, callbacks=callbacks)
        run.log_artifact(viz.plot_learning_curves(history, folder / "phase2_curves.png"), "plots")
    return history, run.run_id


def log_test(run: tracking.Run, model, splits: Splits, folder: Path) -> dict:
    result = evaluation.evaluate(model, splits.batches("test"), splits.source.class_names)
    metrics = result.metrics()
    run.log_metrics(metrics)
    run.log_text(result.report(), "evaluation/report.txt")
    run.log_dict({"class_names": list(result.class_names), "matrix": result.matrix.tolist()},
                 "evaluation/confusion_matrix.json")
    run.log_artifact(viz.plot_confusion_matrix(result.matrix, result.class_names,
                                               folder / "confusion_matrix.png"), "plots")
    run.log_artifact(evaluation.plot_misclassified(result, folder / "misclassified.png"),
                     "plots")
    return metrics


def build(config: TransferConfig, num_classes: int, strategy) -> keras.Model:
    with strategy.scope():
        base = tmodel.load_base(config.weights, config.image_size)
        tmodel.check_layer(base, config.fine_tune_from)  # before any training, not after
        return tmodel.build_classifier(base, num_classes, dropout=config.dropout,
                                       augment=config.augment, seed=config.seed)


def run_transfer(config: TransferConfig, strategy: Optional[tf.distribute.Strategy] = None, *,
                 callbacks: Sequence[keras.callbacks.Callback] = ()) -> TransferResult:
    """Run the recipe; ``callbacks`` are added to both phases' ``fit``."""
    strategy = strategy or tf.distribute.get_strategy()
    tmodel.resolve_weights(config.weights)  # a wrong path fails before any data is read
    keras.utils.set_random_seed(config.seed)
    tracking.disable_autolog()
    splits = load_splits(config, config.batch_size * strategy.num_replicas_in_sync)
    names = splits.source.class_names
    model = build(config, len(names), strategy)
    exp_id = tracking.experiment_id(config.experiment)
    parent = tracking.create_run(exp_id, name=f"inception_v3 transfer {config.data.split(':')[0]}",
                                 tags={"cnnkeras.kind": "transfer", "architecture": "inception_v3",
                                       "dataset": config.data})
    histories, phase_runs = {}, {}
    with tracking.active(parent), tracking.artifact_dir() as folder:
        parent.log_params({**dataclasses.asdict(config), "replicas":
                           strategy.num_replicas_in_sync, "parameters": model.count_params(),
                           **{f"data.size.{k}": v for k, v in splits.source.sizes.items()},
                           "data.skipped_files": len(splits.source.skipped_files)})
        parent.log_dict(dataclasses.asdict(config), "config.json")
        if splits.source.skipped_files:
            parent.log_text("\n".join(splits.source.skipped_files), "data/skipped_files.txt")
        parent.log_text(summary_text(model), "model_summary.txt")
        phases = [("head", phase_one)] + ([("fine_tune", phase_two)]
                                          if config.phase2_epochs else [])
        for name, phase in phases:
            with strategy.scope():
                histories[name], phase_runs[name] = phase(
                    model, splits, config, exp_id=exp_id, parent=parent, callbacks=callbacks)
        metrics = log_test(parent, model, splits, folder)
        path = Path(config.output_dir) / parent.run_id / "model.keras"
        saving.save_classifier(model, path, names, info={
            "architecture": "inception_v3", "dataset": config.data, "run_id": parent.run_id})
        parent.log_artifact(path, "model")
        parent.log_artifact(saving.sidecar_path(path), "model")
    return TransferResult(model, names, histories, metrics, path, parent.run_id, phase_runs)


def describe(result: TransferResult) -> str:
    """The few lines a command-line user wants after a run."""
    metrics = result.test_metrics
    return "\n".join([
        f"test accuracy {metrics['test_accuracy']:.4f}, loss {metrics['test_loss']:.4f}",
        f"model: {result.model_path} (classes in {saving.sidecar_path(result.model_path).name})",
        f"MLflow run: {result.run_id} (phases: {json.dumps(result.phase_run_ids)})",
        f"try it: cnnkeras predict {result.model_path} YOUR_PHOTO.jpg",
    ])


__all__ = ["TransferConfig", "TransferResult", "describe", "load_splits", "run_transfer"]
