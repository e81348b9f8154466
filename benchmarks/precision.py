"""5. Mixed precision on this CPU: bfloat16 (and XLA) against float32 training throughput.

Each model is built under the policy (``mixed_bfloat16``: bfloat16 compute,
float32 weights, float32 ``predictions``), trained on one synthetic batch, and
timed as the median of interleaved repetitions after a warm-up. ``+ XLA``
compiles the train step with ``jit_compile=True`` (``runtime.jit_compile``).
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

import keras

import cnnkeras
from benchmarks import measure
from benchmarks.roofline import contender, input_shape

VARIANTS = {  # label -> (dtype policy, jit_compile)
    "float32": ("float32", False),
    "mixed_bfloat16": ("mixed_bfloat16", False),
    "float32 + XLA": ("float32", True),
    "mixed_bfloat16 + XLA": ("mixed_bfloat16", True),
}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.precision",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--models", default="lecture_cnn,resnet18")
    parse.add_argument("--image-size", type=int, default=0,
                       help="square input; 0 (default): each model's small_input_shape")
    parse.add_argument("--batch-size", type=int, default=32)
    parse.add_argument("--steps", type=int, default=10)
    parse.add_argument("--classes", type=int, default=10)
    parse.add_argument("--variants", default="float32,mixed_bfloat16,float32 + XLA",
                       help=f"comma-separated, from: {', '.join(VARIANTS)}")
    measure.common_arguments(parse, repeats=5)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    variants = ["float32"] + [v.strip() for v in args.variants.split(",")
                              if v.strip() and v.strip() != "float32"]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"Unknown variant(s) {unknown}. Valid: {', '.join(VARIANTS)}")
    report = measure.Report(
        "precision", "5. Mixed precision and XLA vs float32: training throughput on this machine",
        ["model", "variant", "images_per_second", "min_max", "ratio_vs_float32"],
        settings={k: v for k, v in vars(args).items() if k != "output"})
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in cnnkeras.list_architectures():
            report.skip(name, "not a registered architecture")
            continue
        shape = input_shape(name, args.image_size)
        contenders = {v: contender(name, shape, args, VARIANTS[v][0], jit_compile=VARIANTS[v][1])
                      for v in variants}
        results = measure.train_throughput(contenders, steps=args.steps, repeats=args.repeats,
                                           warmup=args.warmup)
        baseline = results["float32"]["images_per_second"]
        for variant, result in results.items():
            report.add(model=f"{name} {'x'.join(map(str, shape))}", variant=variant,
                       images_per_second=result["images_per_second"],
                       min_max=measure.range_text(result["rates"]),
                       ratio_vs_float32=result["images_per_second"] / baseline)
        del contenders
        keras.backend.clear_session()
    report.notes.append("Synthetic random batch (timing only). ratio_vs_float32 > 1: faster "
                        "than float32. Compilation (tracing, XLA) happens in the warm-up.")
    report.save(args.output)
    return report


if __name__ == "__main__":
    main()
