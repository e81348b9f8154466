"""The command line: `cnnkeras SUBCOMMAND ...` (also `python -m cnnkeras`).

The one place that wires the library, the named experiments and the tuning
entry point together. A mistake of the user's prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from typing import Callable, Optional, Sequence

COMMANDS: dict[str, Callable] = {}
WITHOUT_TENSORFLOW = {"list", "ui", "compare"}  # answer at once; a test keeps them so


def command(name: str, help_text: str):
    """Register ``fn(subparsers) -> handler`` for subcommand ``name``."""

    def decorator(fn):
        COMMANDS[name] = (fn, help_text)
        return fn

    return decorator


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="typed config override, repeatable (e.g. train.epochs=3)")


def add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", help="auto, default, one_device, mirrored, multi_worker")
    parser.add_argument("--precision", help="float32, auto, mixed_float16, mixed_bfloat16")


def resolve_config(config, args, **fields):
    """``config`` with CLI flags and --set overrides applied (flags first)."""
    from cnnkeras.config import apply_overrides

    pairs = [f"{key}={value}" for key, value in fields.items() if value is not None]
    for flag, key in (("strategy", "runtime.strategy"), ("precision", "runtime.precision")):
        if getattr(args, flag, None):
            pairs.append(f"{key}={getattr(args, flag)}")
    config = apply_overrides(config, pairs + list(args.overrides))
    from cnnkeras.architectures.options import resolve_options  # checked before anything runs

    options = resolve_options(config.model.architecture, config.model.options)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, options=options))


def start_runtime(config):
    """Precision and strategy, created once here at the entry point."""
    from cnnkeras import distribute

    distribute.set_precision(config.runtime.precision)
    return distribute.create_strategy(config.runtime.strategy,
                                      cpu_devices=config.runtime.cpu_devices)


@command("train", "train one architecture on one dataset, tracked in MLflow")
def _train(sub):
    parser = sub.add_parser("train", help="train one architecture on one dataset")
    parser.add_argument("architecture", nargs="?", help="registered architecture name")
    parser.add_argument("--dataset", help="dataset spec (digits, mnist, idx:DIR, folder:DIR, ...)")
    parser.add_argument("--experiment", default=None,
                        help="named experiment to start from (default: lecture_digits)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="per replica")
    parser.add_argument("--data-dir", help="tensorflow-datasets data directory")
    add_runtime(parser)
    add_overrides(parser)

    def handler(args):
        import experiments
        from cnnkeras.config import ModelConfig
        from cnnkeras.training import train_experiment

        if not args.architecture and not args.experiment:
            raise ValueError("Name an architecture or --experiment. See `cnnkeras list`.")
        base = experiments.get(args.experiment or experiments.DEFAULT)
        if not args.experiment:  # a bare architecture: its own defaults, its own input size
            base = dataclasses.replace(
                base, name="cnnkeras-train", model=ModelConfig(args.architecture),
                data=dataclasses.replace(base.data, image_size=None, channels=None))
        config = resolve_config(
            base, args,
            **{"model.architecture": args.architecture, "data.dataset": args.dataset,
               "train.epochs": args.epochs, "train.batch_size": args.batch_size,
               "data.data_dir": args.data_dir})
        result = train_experiment(config, start_runtime(config))
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
        if not result.run_id:  # a non-chief worker: the chief logs and saves
            print(f"test: {metrics}\n(worker: the chief saves the model and logs to MLflow)")
            return
        print(f"test: {metrics}\nmodel: {result.model_path}\nMLflow run: {result.run_id}")

    return handler


@command("tune", "KerasTuner search over a named experiment's space, logged to MLflow")
def _tune(sub):
    parser = sub.add_parser("tune", help="hyperparameter search, logged to MLflow")
    parser.add_argument("experiment", nargs="?", default=None, help="named experiment")
    parser.add_argument("--tuner", help="random, bayesian, hyperband, grid")
    parser.add_argument("--max-trials", type=int)
    parser.add_argument("--dataset", help="dataset spec replacing the experiment's")
    parser.add_argument("--epochs", type=int)
    add_runtime(parser)
    add_overrides(parser)

    def handler(args):
        import experiments

        config = resolve_config(
            experiments.get(args.experiment or experiments.DEFAULT), args,
            **{"tune.tuner": args.tuner, "tune.max_trials": args.max_trials,
               "data.dataset": args.dataset, "train.epochs": args.epochs})
        from tuning.search import run_search  # TensorFlow loads after the config is checked

        run_search(config, start_runtime(config))

    return handler


@command("ui", "start the MLflow UI on the project's tracking store")
def _ui(sub):
    parser = sub.add_parser("ui", help="start `mlflow ui` on the tracking store")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (default 1: one person's dashboard)")
    parser.add_argument("--allowed-hosts",
                        help="MLflow's Host-header allow list (default: * when --host is not "
                             "loopback, so other machines are not refused with 403)")

    def handler(args):
        from cnnkeras.tracking import dashboard

        return dashboard.serve(host=args.host, port=args.port, workers=args.workers,
                               allowed_hosts=args.allowed_hosts)

    return handler


@command("compare", "rank and plot the runs of cnnkeras experiments, logged as a comparison run")
def _compare(sub):
    parser = sub.add_parser("compare", help="compare the runs of experiments")
    parser.add_argument("experiments", nargs="*", help="experiment names (default: all)")
    parser.add_argument("--metric", default="val_accuracy", help="metric to rank runs by")
    parser.add_argument("--top", type=int, default=10, help="how many runs the table lists")
    parser.add_argument("--format", default="markdown", choices=("markdown", "csv", "json"),
                        help="how to print the table")
    parser.add_argument("--output-dir", default="runs/compare", help="where files are written")

    def handler(args):
        from pathlib import Path

        from cnnkeras.tracking import compare

        comparison = compare.load(args.experiments, args.metric)
        files = compare.write(comparison, Path(args.output_dir), args.top)
        run_id = compare.log(files, args.experiments, args.metric)
        print(compare.render(compare.best_table(comparison, args.top), args.format))
        print(f"\nwrote {len(files)} files to {args.output_dir}; logged to MLflow run {run_id} "
              f"(experiment {compare.COMPARISONS})", file=sys.stderr)

    return handler


@command("list", "list architectures, experiments and dataset specs")
def _list(sub):
    sub.add_parser("list", help="list architectures, experiments and dataset specs")

    def handler(args):
        import cnnkeras
        import experiments
        from cnnkeras.data import SPEC_FORMS

        print("architectures:", ", ".join(cnnkeras.list_architectures()))
        print("experiments:  ", ", ".join(experiments.names()))
        print("datasets:     ", ", ".join(SPEC_FORMS))

    return handler


@command("transfer", "Inception v3 transfer learning (frozen head, then fine-tuning), in MLflow")
def _transfer(sub):
    """`cnnkeras train --experiment transfer_flowers`, short: a flag's dest is its config key."""
    parser = sub.add_parser("transfer", help="ImageNet Inception v3 -> your classes, two phases")
    arg = parser.add_argument
    arg("--data", dest="data.dataset", help="dataset spec (default tf_flowers; folder:DIR)")
    arg("--data-dir", dest="data.data_dir", help="tensorflow-datasets data directory")
    arg("--weights", dest="model.options.weights", help="imagenet (default), none, or a file")
    arg("--image-size", dest="data.image_size", type=int, help="square side >= 75 (default 299)")
    arg("--epochs", dest="train.epochs", type=int, help="phase 1 epochs (and phase 2 by default)")
    arg("--fine-tune-epochs", dest="transfer.fine_tune_epochs", type=int, help="0 skips phase 2")
    arg("--batch-size", dest="train.batch_size", type=int, help="per replica (default 32)")
    arg("--learning-rate", dest="train.learning_rate", type=float, help="phase 2 uses a tenth")
    arg("--fine-tune-from", dest="transfer.fine_tune_from", help="default mixed7")
    arg("--bottlenecks", dest="transfer.bottlenecks", action="store_true", default=None,
        help="phase 1 on base features computed once and cached on disk")
    arg("--no-augment", dest="model.options.augment", action="store_false", default=None)
    arg("--limit", dest="data.limit", type=int, help="at most this many images per split")
    arg("--seed", dest="data.seed", type=int, help="data split, shuffling and initialisation")
    arg("--output-dir", dest="runtime.output_dir", help="models and cached features (runs)")
    arg("--experiment", dest="runtime.mlflow_experiment", help="default transfer_flowers")
    add_runtime(parser)
    add_overrides(parser)

    def handler(args):
        import experiments
        from cnnkeras.training import train_experiment
        from cnnkeras.transfer import describe

        fields = {key: value for key, value in vars(args).items() if "." in key}
        size, fields["runtime.seed"] = fields["data.image_size"], fields["data.seed"]
        fields["data.image_size"] = None if size is None else f"{size}x{size}"
        config = resolve_config(experiments.get("transfer_flowers"), args, **fields)
        print(describe(train_experiment(config, start_runtime(config))))

    return handler


@command("predict", "top-k classes of your own images: a saved model, or ImageNet Inception v3")
def _predict(sub):
    parser = sub.add_parser("predict", help="top-k classes of your own images",
                            usage="cnnkeras predict MODEL IMAGE... | --imagenet IMAGE...")
    parser.add_argument("paths", nargs="+", metavar="MODEL IMAGE...",
                        help="a .keras model saved by `cnnkeras transfer`, then images")
    parser.add_argument("--imagenet", action="store_true",
                        help="no MODEL: ImageNet Inception v3, decode_predictions labels")
    parser.add_argument("--weights", help="with --imagenet: a local Inception v3 weights file")
    parser.add_argument("--class-index", help="with --imagenet: local imagenet_class_index.json")
    parser.add_argument("--top-k", type=int, default=5)

    def handler(args):
        from cnnkeras import predict

        if args.top_k < 1:
            raise ValueError(f"--top-k must be at least 1. Received: {args.top_k}")
        if (args.weights or args.class_index) and not args.imagenet:
            raise ValueError("--weights and --class-index go with --imagenet.")
        if args.imagenet:
            results = predict.predict_imagenet(args.paths, weights=args.weights or "imagenet",
                                               k=args.top_k, class_index=args.class_index)
        else:
            results = predict.predict_images(args.paths[0], args.paths[1:], k=args.top_k)
        print("\n".join(result.format() for result in results))

    return handler


@command("inspect", "layer table (shapes, parameters, receptive fields, FLOPs) and memory")
def _inspect(sub):
    parser = sub.add_parser("inspect", help="layer table and memory report of a model")
    parser.add_argument("model", metavar="NAME_OR_MODEL",
                        help="registered architecture (built untrained) or a saved .keras file")
    parser.add_argument("--input-shape", help="e.g. 227,227,3 (default: the paper's size)")
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", default="float32", help="float32, float16, bfloat16, float64")
    parser.add_argument("--optimizer", default="adam", help="adam, sgd, sgd_momentum, ...")

    def handler(args):
        from cnnkeras.inspection import report

        shape = report.parse_shape(args.input_shape) if args.input_shape else None
        model = report.resolve_model(args.model, input_shape=shape,
                                     num_classes=args.num_classes)
        report.print_inspection(model, batch_size=args.batch_size, dtype=args.dtype,
                                optimizer=args.optimizer)
        from cnnkeras.architectures.nn_variants import standard_twin_savings

        savings = standard_twin_savings(args.model, model)
        if savings:
            print(savings)

    return handler


@command("filters", "draw a model's first-layer filters as a PNG grid")
def _filters(sub):
    parser = sub.add_parser("filters", help="first-layer filters as a PNG grid")
    parser.add_argument("model", metavar="NAME_OR_MODEL",
                        help="registered architecture (built untrained) or a saved .keras file")
    parser.add_argument("--layer", help="a convolution layer (default: the first)")
    parser.add_argument("--output", default="filters.png", help="PNG to write")

    def handler(args):
        from cnnkeras.inspection import report, viz

        model = report.resolve_model(args.model)
        untrained = not report.names_a_saved_model(args.model)
        if untrained:
            print(f"{args.model}: built from its name, so the filters are "
                  f"{viz.UNTRAINED_NOTE}; pass a saved .keras model to see learned ones.")
        print(viz.plot_filters(model, args.output, layer_name=args.layer, untrained=untrained))

    return handler


@command("feature-maps", "draw the feature maps of chosen layers for one image as a PNG")
def _feature_maps(sub):
    parser = sub.add_parser("feature-maps", help="feature maps of chosen layers for an image")
    parser.add_argument("model", metavar="NAME_OR_MODEL",
                        help="registered architecture (built untrained) or a saved .keras file")
    parser.add_argument("--image", required=True, help="image file (scaled to [0, 1])")
    parser.add_argument("--layers", nargs="+", help="layer names (default: low, mid, high)")
    parser.add_argument("--output", default="feature_maps.png", help="PNG to write")

    def handler(args):
        from cnnkeras.data.images import load_image
        from cnnkeras.inspection import report, viz

        model = report.resolve_model(args.model)
        image = load_image(args.image)
        print(viz.plot_feature_maps(model, image, args.layers, args.output))

    return handler


class Terminated(SystemExit):
    """SIGTERM or SIGHUP, raised where the process is, so open runs end KILLED."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


def _terminate(signum, frame):
    raise Terminated(signum)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from cnnkeras import logs

    parser = argparse.ArgumentParser(prog="cnnkeras", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="warning", choices=logs.LEVELS,
                        help="debug shows TensorFlow's own log lines (default: warning)")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = {name: register(sub) for name, (register, _) in COMMANDS.items()}
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # a terminated run ends KILLED, not RUNNING
        signal.signal(signum, _terminate)
    logs.configure(args.log_level)
    try:
        if args.command not in WITHOUT_TENSORFLOW:
            logs.import_tensorflow()
        return int(handlers[args.command](args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"cnnkeras {args.command}: error: {err}", file=sys.stderr)
        if getattr(err, "leave_at_once", False):  # e.g. a cluster that lost a worker, whose
            sys.stdout.flush()  # TensorFlow runtime would add a traceback while shutting down
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("cnnkeras: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"cnnkeras {args.command}: stopped by {stop.signal_name}", file=sys.stderr)
        return stop.code


if __name__ == "__main__":
    sys.exit(main())
