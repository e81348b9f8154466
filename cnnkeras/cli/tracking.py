"""Reading the tracking store back: `ui`, `compare`, and `list` (no TensorFlow for any)."""

from __future__ import annotations

import sys

from cnnkeras.cli.common import command


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


@command("serve", "MLflow's scoring server for a logged or registered model, on 127.0.0.1")
def _serve(sub):
    parser = sub.add_parser("serve", help="serve a model: POST /invocations -> class "
                                          "probabilities")
    parser.add_argument("model", metavar="MODEL_URI",
                        help="models:/NAME/VERSION, models:/NAME/latest or runs:/RUN_ID/model")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1)

    def handler(args):
        from cnnkeras.tracking import serving

        return serving.serve_model(args.model, host=args.host, port=args.port,
                                   workers=args.workers)

    return handler
