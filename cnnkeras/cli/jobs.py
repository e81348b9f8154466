"""The long jobs: `train`, `tune` and `transfer` (its short form), each from a named experiment."""

from __future__ import annotations

from cnnkeras.cli import api
from cnnkeras.cli.common import add_overrides, add_runtime, command, resolve_config

RUNTIME_FLAGS = ("strategy", "precision")
TRAIN_FLAGS = ("dataset", "epochs", "batch_size", "data_dir", *RUNTIME_FLAGS)
TUNE_FLAGS = ("tuner", "max_trials", "dataset", "epochs", *RUNTIME_FLAGS)


def settings(args, flags) -> dict:
    """The flags a user gave, as keywords of ``cnnkeras.train`` / ``cnnkeras.tune``."""
    return {flag: getattr(args, flag) for flag in flags if getattr(args, flag) is not None}


@command("train", "train one architecture on one dataset, tracked in MLflow")
def _train(sub):
    parser = sub.add_parser("train", help="train one architecture on one dataset")
    parser.add_argument("architecture", nargs="?", metavar="ARCHITECTURE_OR_EXPERIMENT",
                        help="registered architecture (its own defaults) or named experiment")
    parser.add_argument("--dataset", help="dataset spec (digits, mnist, idx:DIR, folder:DIR, ...)")
    parser.add_argument("--experiment", default=None,
                        help="named experiment to start from (default: lecture_digits)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="per replica")
    parser.add_argument("--data-dir", help="tensorflow-datasets data directory")
    parser.add_argument("--register", action="store_true",
                        help="register the model in the MLflow Model Registry under the "
                             "experiment's name (a new version)")
    add_runtime(parser)
    add_overrides(parser)

    def handler(args):
        if not args.architecture and not args.experiment:
            raise ValueError("Name an architecture or --experiment. See `cnnkeras list`.")
        overrides = list(args.overrides)
        if args.architecture and args.experiment:  # an experiment with another architecture
            overrides.insert(0, f"model.architecture={args.architecture}")
        result = api.train(args.experiment or args.architecture, overrides=overrides,
                           register=args.register, **settings(args, TRAIN_FLAGS))
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
        if not result.run_id:  # a non-chief worker: the chief logs and saves
            print(f"test: {metrics}\n(worker: the chief saves the model and logs to MLflow)")
            return
        print(f"test: {metrics}\nMLflow run: {result.run_id}\n"
              f"model: runs:/{result.run_id}/model ({result.model_uri})")
        if result.registered:
            print(f"registered: {result.registered}")

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
        api.tune(args.experiment, overrides=args.overrides, **settings(args, TUNE_FLAGS))

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
        print(describe(train_experiment(config, api.start_runtime(config))))

    return handler
