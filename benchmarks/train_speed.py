"""7. ``cnnkeras train``'s default training against plain Keras on the same model and images.

For each model, in interleaved repetitions (A B A B ...), one run of each:

- **cnnkeras**: ``cnnkeras.train(MODEL, dataset=..., epochs=E)``, the command's own path
  (its config, data pipeline, compile settings, backup, MLflow run into a throwaway
  store), with a clock on each epoch.
- **plain Keras**: the same network (``cnnkeras.build`` with the options the run used),
  compiled with Keras' defaults (Adam, ``sparse_categorical_crossentropy``,
  accuracy) and ``model.fit`` on NumPy arrays of the very same images at batch 32,
  validating on the same validation images.

A model trains at its ``small_input_shape`` when its default config leaves the size
to the architecture (``resnet18``: 32x32x3 rather than 224x224).

Images/s is the training split over the median steady epoch (the first, which traces,
is left out); both epochs include their validation pass. Test accuracy after the same
epochs is reported beside it: a faster default that learns less is no gain. Each
repetition starts both sides from its own seed (the config's seed + the repetition), so
the accuracy is a median over seeds, not one seed's result repeated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import keras

import cnnkeras
from benchmarks import measure
from cnnkeras.registry import ARCHITECTURES


def cnnkeras_run(name: str, args, folder: Path, repeat: int = 0) -> dict:
    """``cnnkeras.train``'s own path, timed per epoch; its config for the baseline to copy.

    Repetition ``repeat`` trains from the config's seed + ``repeat``."""
    from cnnkeras.cli import api
    from cnnkeras.training import train_experiment

    overrides = [f"runtime.output_dir={folder / 'runs'}", "runtime.verbose=0",
                 *([f"data.limit={args.limit}"] if args.limit else [])]
    config = api.resolve(api.base_config(name), overrides, dataset=args.dataset,
                         epochs=args.epochs)
    config = api.resolve(config, [f"runtime.seed={config.runtime.seed + repeat}"])
    if config.data.image_size is None:  # the architecture's full size (224 for ResNets)
        height, width, channels = ARCHITECTURES.metadata(name)["small_input_shape"]
        config = api.resolve(config, [f"data.image_size={height},{width}",
                                      f"data.channels={channels}"])
    clock = measure.EpochClock()
    result = train_experiment(config, api.start_runtime(config), callbacks=[clock])
    return {"seconds": clock.seconds, "accuracy": float(result.test_metrics["accuracy"]),
            "config": config}


def baseline_run(name: str, config, splits: dict, args) -> dict:
    """The same network in plain Keras: defaults, NumPy arrays, batch 32."""
    (x, y), validation, (xt, yt) = splits["train"], splits["validation"], splits["test"]
    keras.utils.set_random_seed(config.runtime.seed)
    model = cnnkeras.build(name, input_shape=x.shape[1:], num_classes=args.classes,
                           **dict(config.model.options))
    measure.plain_keras(model)
    clock = measure.EpochClock()
    model.fit(x, y, batch_size=measure.PLAIN_BATCH, epochs=args.epochs,
              validation_data=validation, verbose=0, callbacks=[clock])
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    keras.backend.clear_session()
    return {"seconds": clock.seconds, "accuracy": float(accuracy)}


def same_images(config) -> dict:
    """The train, validation and test images the cnnkeras run used, as arrays."""
    from cnnkeras.training.run import load_data

    loaded = load_data(config, config.train.batch_size)
    return {split: measure.arrays(getattr(loaded, split)) if loaded.sizes[split] else None
            for split in ("train", "validation", "test")}


def steady_rate(runs: list, count: int) -> list:
    """Images/s of every steady epoch (all but each run's first) over the runs."""
    return [count / s for run in runs for s in run["seconds"][1:]]


def compare(name: str, args, folder: Path, report: measure.Report) -> None:
    runs = {"cnnkeras": [], "plain Keras": []}
    splits = None
    for repeat in range(args.warmup + args.repeats):
        ours = cnnkeras_run(name, args, folder / f"{name}-{repeat}", repeat)
        splits = splits or same_images(ours["config"])
        args.classes = int(splits["train"][1].max()) + 1
        theirs = baseline_run(name, ours["config"], splits, args)
        if repeat >= args.warmup:
            runs["cnnkeras"].append(ours)
            runs["plain Keras"].append(theirs)
        config = ours["config"]
    count = len(splits["train"][1])
    rates = {label: steady_rate(done, count) for label, done in runs.items()}
    base = statistics.median(rates["plain Keras"])
    for label, done in runs.items():
        report.add(model=f"{name} {'x'.join(map(str, splits['train'][0].shape[1:]))}",
                   training=label,
                   recipe=measure.recipe_text(
                       config.train.optimizer, config.train.learning_rate,
                       config.train.lr_schedule, config.train.batch_size
                   ) if label == "cnnkeras" else measure.recipe_text(
                       measure.PLAIN_OPTIMIZER, measure.PLAIN_LEARNING_RATE, "constant",
                       measure.PLAIN_BATCH),
                   images_per_second=statistics.median(rates[label]),
                   min_max=measure.range_text(measure.spread(rates[label])),
                   speedup=statistics.median(rates[label]) / base,
                   test_accuracy=statistics.median(r["accuracy"] for r in done))


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.train_speed",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--models", default="lecture_cnn,lenet5_modern,resnet18")
    parse.add_argument("--dataset", default="digits",
                       help="dataset spec, e.g. digits or idx:DIR (default digits)")
    parse.add_argument("--epochs", type=int, default=3, help="epochs per run (>= 2)")
    parse.add_argument("--limit", type=int, default=None,
                       help="at most this many images per split (data.limit)")
    measure.common_arguments(parse, repeats=2)
    parse.set_defaults(warmup=0)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    if args.epochs < 2:
        raise SystemExit("train_speed: --epochs must be at least 2 (the first epoch traces "
                         f"and is not counted). Received: {args.epochs}")
    report = measure.Report(
        "train_speed", "7. cnnkeras train's default training vs plain Keras model.fit",
        ["model", "training", "recipe", "images_per_second", "min_max", "speedup",
         "test_accuracy"], settings={k: v for k, v in vars(args).items() if k != "output"})
    with tempfile.TemporaryDirectory(prefix="train_speed-") as scratch:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch}/mlflow.db"
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            if name not in cnnkeras.list_architectures():
                report.skip(name, "not a registered architecture")
                continue
            compare(name, args, Path(scratch), report)
    report.notes.append(f"Real images of {args.dataset!r}; {args.epochs} epochs per run, "
                        f"{args.repeats} interleaved runs each; images/s over the steady "
                        "epochs (validation included), speedup against plain Keras.")
    report.save(args.output)
    return report


if __name__ == "__main__":
    main()
