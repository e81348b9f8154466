"""1. Our builders against the equivalent ``keras.applications`` model: training images/s.

Same input size, batch, optimizer, loss and (synthetic) batch for both, timed in
interleaved repetitions; achieved FLOP/s is 3 x the analytic forward FLOPs per
image (``cnnkeras.inspection.analysis.model_flops``) times images per second.
"""

from __future__ import annotations

import argparse
import gc
from typing import Optional, Sequence

import keras

import cnnkeras
from benchmarks import measure
from benchmarks.roofline import analytic_flops, contender, train_gflops

APPLICATIONS = {  # our registry name -> the keras.applications class of the same network
    "resnet50": "ResNet50",
    "resnet152": "ResNet152",
    "inception_v3": "InceptionV3",
}


def compare(name: str, args, report: measure.Report) -> None:
    if name not in APPLICATIONS:
        report.skip(name, f"no keras.applications equivalent (known: {', '.join(APPLICATIONS)})")
        return
    if name not in cnnkeras.list_architectures():
        report.skip(name, "its builder is not registered in cnnkeras yet")
        return
    shape = (args.image_size, args.image_size, 3)
    application = getattr(keras.applications, APPLICATIONS[name])
    contenders = {
        "cnnkeras": contender(name, shape, args),
        "keras.applications": contender(name, shape, args, build=lambda: application(
            weights=None, input_shape=shape, classes=args.classes)),
    }
    flops = {label: analytic_flops(model) for label, (model, _, _) in contenders.items()}
    if flops["cnnkeras"] is None:
        report.skip(f"{name} FLOP/s", "inspection.analysis.model_flops is not available")
    results = measure.train_throughput(contenders, steps=args.steps, repeats=args.repeats,
                                       warmup=args.warmup)
    theirs = results["keras.applications"]["images_per_second"]
    for label, result in results.items():
        report.add(model=f"{name} {args.image_size}x{args.image_size}", implementation=label,
                   images_per_second=result["images_per_second"],
                   min_max=measure.range_text(result["rates"]),
                   train_gflops_per_second=train_gflops(flops[label],
                                                        result["images_per_second"]),
                   parameters=contenders[label][0].count_params(),
                   ratio_vs_applications=result["images_per_second"] / theirs)
    del contenders
    keras.backend.clear_session()
    gc.collect()


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.throughput",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--models", default="resnet50,resnet152,inception_v3",
                       help="comma-separated registry names")
    parse.add_argument("--image-size", type=int, default=96,
                       help="square input size for both (default 96; papers use 224/299)")
    parse.add_argument("--batch-size", type=int, default=8)
    parse.add_argument("--steps", type=int, default=3, help="training steps per repetition")
    parse.add_argument("--classes", type=int, default=10)
    measure.common_arguments(parse)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    report = measure.Report(
        "throughput", "1. Training throughput: cnnkeras builders vs keras.applications",
        ["model", "implementation", "images_per_second", "min_max", "train_gflops_per_second",
         "parameters", "ratio_vs_applications"],
        settings={k: v for k, v in vars(args).items() if k != "output"})
    report.notes.append("Synthetic random batch (timing only). ratio_vs_applications > 1: "
                        "ours is faster. Training FLOP/s = 3 x analytic forward FLOPs x images/s.")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        compare(name, args, report)
    report.save(args.output)
    return report


if __name__ == "__main__":
    main()
