"""6. Time to 98.5% test accuracy on MNIST (the 10,000 test images split 8,000 / 2,000).

Pass the data on the command line, e.g. ``--dataset idx:/path/to/mnist`` (a folder
holding ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``). Each model
trains on the 8,000 (seeded, stratified split), is evaluated on the 2,000 after
every epoch (evaluation outside the clock), and stops at the target. Every
repetition uses another seed; the median time is reported.

A model trains with its own recipe when an experiment ``<model>_mnist`` is
registered (``lenet5_mnist``, ``lenet5_modern_mnist``: builder options,
optimizer, learning rate and its schedule over the recipe's epochs, batch size, epochs as
the most epochs), else with
Adam at 1e-3, batch 64, at most 15 epochs, under the batch size and learning rate
that ``cnnkeras train MODEL`` uses for it (``experiments.TRAINING``: lecture_cnn
at batch 128, 4e-3). ``--learning-rate``,
``--batch-size`` and ``--max-epochs`` override every model's.

``--baselines`` models (default ``lecture_cnn``) also train as plain Keras would, in
the same run, interleaved by seed: ``compile`` defaults (Adam 1e-3), ``model.fit`` on
NumPy arrays of the same images, batch 32.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Optional, Sequence

import keras

import cnnkeras
import experiments
from benchmarks import measure
from cnnkeras import data, training
from cnnkeras.config import TrainConfig

FALLBACK = TrainConfig(epochs=15, batch_size=64, optimizer="adam", learning_rate=1e-3)
SPLIT = data.SplitPlan(validation_fraction=0.0, test_fraction=0.2, seed=0)  # 8,000 / 2,000


class UntilAccurate(keras.callbacks.Callback):
    """Times each epoch, then evaluates on the test split and stops at the target."""

    def __init__(self, test, target: float):
        super().__init__()
        self.test, self.target = test, target
        self.train_seconds, self.accuracies = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds.append(time.perf_counter() - self.started)
        accuracy = self.model.evaluate(self.test, verbose=0, return_dict=True)["accuracy"]
        self.accuracies.append(float(accuracy))
        if accuracy >= self.target:
            self.model.stop_training = True


def recipe(name: str, args) -> dict:
    """How ``name`` trains: its ``<name>_mnist`` experiment's options and training, else
    ``FALLBACK`` with the architecture's own knobs (``experiments.TRAINING``); the command
    line's learning rate, batch size and epochs on top."""
    config = experiments.get(f"{name}_mnist") if f"{name}_mnist" in experiments.names() else None
    train = config.train if config else experiments.own_training(name, FALLBACK)
    return {"options": dict(config.model.options) if config else {},
            "optimizer": train.optimizer, "schedule": train.lr_schedule,
            "learning_rate": args.learning_rate or train.learning_rate,
            "batch_size": args.batch_size or train.batch_size,
            "max_epochs": args.max_epochs or train.epochs}


def recipe_text(how: dict) -> str:
    options = " ".join(f"{k}={v}" for k, v in how["options"].items())
    return (measure.recipe_text(how["optimizer"], how["learning_rate"], how["schedule"],
                                how["batch_size"]) + ", "
            f"<= {how['max_epochs']} epochs {options}").strip()


def one_run(name: str, loaded, how: dict, target: float, seed: int) -> dict:
    """Train until ``target``: through ``cnnkeras.data`` with the recipe ``how``, or, when
    ``how`` holds ``arrays``, plain Keras (``compile`` defaults, NumPy arrays, batch 32)."""
    keras.utils.set_random_seed(seed)
    model = cnnkeras.build(name, input_shape=loaded.input_shape, num_classes=loaded.num_classes,
                           **how["options"])
    clock = UntilAccurate(loaded.test, target)
    if "arrays" in how:
        measure.plain_keras(model)
        x, y = how["arrays"]
        model.fit(x, y, batch_size=how["batch_size"], epochs=how["max_epochs"],
                  callbacks=[clock], verbose=0)
    else:
        training.compile_model(model, optimizer=how["optimizer"],
                               learning_rate=how["learning_rate"])
        schedule = training.schedule_callbacks(how["schedule"], how["learning_rate"],
                                               how["max_epochs"])
        model.fit(loaded.train, epochs=how["max_epochs"], callbacks=[*schedule, clock],
                  verbose=0, shuffle=False)
    reached = clock.accuracies[-1] >= target
    return {"seconds": sum(clock.train_seconds) if reached else None,
            "epochs": len(clock.accuracies), "best_accuracy": max(clock.accuracies),
            "reached": reached}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.time_to_accuracy",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--dataset", default=None,
                       help="MNIST test set as a dataset spec, e.g. idx:DIR (required to run)")
    parse.add_argument("--models", default="lecture_cnn,lenet5,lenet5_modern")
    parse.add_argument("--baselines", default="lecture_cnn",
                       help="models also trained as plain Keras would: compile defaults (Adam "
                            "1e-3), model.fit on NumPy arrays, batch 32, in the same run")
    parse.add_argument("--target", type=float, default=0.985)
    parse.add_argument("--max-epochs", type=int, default=None,
                       help="default: the model's recipe (15 without one)")
    parse.add_argument("--batch-size", type=int, default=None,
                       help="default: the model's recipe (64 without one)")
    parse.add_argument("--learning-rate", type=float, default=None,
                       help="default: the model's recipe (1e-3 without one)")
    measure.common_arguments(parse, repeats=3)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    report = measure.Report(
        "time_to_accuracy", f"6. Time to {args.target:.1%} test accuracy, MNIST 8,000/2,000",
        ["model", "recipe", "seconds_median", "min_max", "epochs", "best_accuracy", "reached"],
        settings={k: v for k, v in vars(args).items() if k != "output"})
    if not args.dataset:
        report.skip("all models", "no --dataset given (e.g. --dataset idx:DIR with the MNIST "
                                  "t10k IDX files); the data is never assumed")
        report.save(args.output)
        return report
    splits = {}  # batch size -> the split, batched

    def load(batch_size: int):
        if batch_size not in splits:
            splits[batch_size] = data.load(args.dataset, image_size=(28, 28), channels=1,
                                           batch_size=batch_size, plan=SPLIT)
        return splits[batch_size]

    sizes = load(args.batch_size or FALLBACK.batch_size).sizes
    report.notes.append(f"{args.dataset}: {sizes['train']} training and {sizes['test']} test "
                        "images (real data); models take 28x28 input (LeNet-5's pad layer "
                        "makes it 32x32, as in the paper).")
    baselines = {m.strip() for m in args.baselines.split(",") if m.strip()}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in cnnkeras.list_architectures():
            report.skip(name, "its builder is not registered in cnnkeras yet")
            continue
        how = recipe(name, args)
        contenders = {name: (how, load(how["batch_size"]))}
        if name in baselines:
            batch = measure.PLAIN_BATCH
            plain = {**how, "arrays": measure.arrays(load(batch).train),
                     "optimizer": measure.PLAIN_OPTIMIZER,
                     "learning_rate": measure.PLAIN_LEARNING_RATE, "batch_size": batch,
                     "schedule": "constant"}
            contenders[f"{name} (plain Keras)"] = (plain, load(batch))
        for how, loaded in contenders.values():
            for seed in range(args.warmup):  # a short untimed run: thread pools, kernels
                one_run(name, loaded, {**how, "max_epochs": 1}, args.target, seed=1000 + seed)
        runs = {label: [] for label in contenders}
        for seed in range(args.repeats):  # interleaved: a change of load hits both alike
            for label, (how, loaded) in contenders.items():
                runs[label].append(one_run(name, loaded, how, args.target, seed))
        for label, (how, _) in contenders.items():
            add_row(report, label, how, runs[label])
    report.notes.append("seconds: training time summed over epochs until the target "
                        "(evaluation excluded), median over the seeds that reached it; "
                        "plain Keras rows fit NumPy arrays of the same images.")
    report.save(args.output)
    return report


def add_row(report: measure.Report, label: str, how: dict, runs: list) -> None:
    times = [r["seconds"] for r in runs if r["reached"]]
    report.add(model=label, recipe=recipe_text(how),
               seconds_median=statistics.median(times) if times else None,
               min_max=f"{min(times):.3g}-{max(times):.3g}" if times else "",
               epochs="/".join(str(r["epochs"]) for r in runs),
               best_accuracy=max(r["best_accuracy"] for r in runs),
               reached=f"{len(times)}/{len(runs)}")


if __name__ == "__main__":
    main()
