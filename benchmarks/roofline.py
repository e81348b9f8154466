"""2. Achieved FLOP/s of a training step as a fraction of this machine's matmul roof.

The roof is a large square ``tf.matmul`` (2 n^3 FLOPs) timed in the same run, in
float32 and in bfloat16. A training step's work is 3 x the analytic forward
FLOPs per image (``cnnkeras.inspection.analysis.model_flops``; the backward pass
costs about twice the forward) times the batch.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Optional, Sequence

import keras
import tensorflow as tf

import cnnkeras
from benchmarks import measure
from cnnkeras import distribute
from cnnkeras.config import TrainConfig
from cnnkeras.registry import ARCHITECTURES
from cnnkeras.training.conv_gradient import use_forward_input_gradients

DTYPES = {"float32": ("float32", tf.float32), "bfloat16": ("mixed_bfloat16", tf.bfloat16)}


def analytic_flops(model) -> Optional[int]:
    """Forward FLOPs per image, or None when ``inspection.analysis.model_flops`` is absent."""
    try:
        from cnnkeras.inspection.analysis import model_flops
    except ImportError:
        return None
    return int(model_flops(model))


def train_gflops(flops: Optional[int], images_per_second: float) -> Optional[float]:
    return 3 * flops * images_per_second / 1e9 if flops else None


def matmul_roof(size: int, dtype, *, repeats: int, warmup: int, chain: int = 4) -> dict:
    """GFLOP/s of ``chain`` dependent size x size matmuls (x <- x @ b) in one graph call.

    Each product feeds the next, so graph optimisation cannot merge them (four identical
    independent matmuls would be computed once and counted four times).
    """
    a = tf.cast(tf.random.stateless_uniform((size, size), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_uniform((size, size), seed=(3, 4)) * (2.0 / size), dtype)

    @tf.function
    def run():
        x = a
        for _ in range(chain):
            x = tf.matmul(x, b)
        return tf.reduce_sum(tf.cast(x[:1, :1], tf.float32))

    seconds = measure.timed(lambda: run().numpy(), repeats=repeats, warmup=warmup)
    rates = [2 * size ** 3 * chain / s / 1e9 for s in seconds]
    return {"gflops_per_second": statistics.median(rates), "rates": measure.spread(rates)}


def contender(name: str, shape, args, policy: str = "float32", *, jit_compile: bool = False,
              build=None, batch_size: Optional[int] = None):
    """(compiled model, synthetic images, labels) built under ``policy``; float32 after."""
    distribute.set_precision(policy)
    try:
        keras.utils.set_random_seed(0)
        model = (build or (lambda: cnnkeras.build(name, input_shape=shape,
                                                  num_classes=args.classes)))()
        use_forward_input_gradients(model)  # as cnnkeras' training does (without oneDNN)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images, labels = measure.synthetic_batch(shape, args.classes,
                                             batch_size or args.batch_size)
    return model, images, labels


def input_shape(name: str, image_size: int) -> tuple:
    """``image_size`` squared with the model's channels, or its ``small_input_shape`` (0)."""
    small = tuple(ARCHITECTURES.metadata(name)["small_input_shape"])
    return (image_size, image_size, small[-1]) if image_size else small


def default_batch(name: str) -> int:
    """The batch size ``cnnkeras train NAME`` trains with (its recipe's, or the defaults')."""
    from cnnkeras.cli import api

    return api.base_config(name).train.batch_size


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.roofline",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--models", default="lecture_cnn,resnet18,resnet50")
    parse.add_argument("--image-size", type=int, default=0,
                       help="square input (default 0: each model's small_input_shape)")
    parse.add_argument("--batch-size", type=int, default=0,
                       help="default 0: the batch size `cnnkeras train MODEL` trains with "
                            f"({TrainConfig().batch_size}, or its experiments.TRAINING batch)")
    parse.add_argument("--steps", type=int, default=5)
    parse.add_argument("--classes", type=int, default=10)
    parse.add_argument("--matmul-size", type=int, default=2048)
    parse.add_argument("--dtypes", default="float32,bfloat16")
    measure.common_arguments(parse, repeats=5)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    report = measure.Report(
        "roofline", "2. Training-step FLOP/s as a fraction of the matmul roof",
        ["model", "dtype", "batch", "images_per_second", "train_gflops_per_second",
         "roof_gflops_per_second", "fraction_of_roof"],
        settings={k: v for k, v in vars(args).items() if k != "output"})
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    roofs = {}
    for dtype in dtypes:
        roofs[dtype] = matmul_roof(args.matmul_size, DTYPES[dtype][1], repeats=args.repeats,
                                   warmup=args.warmup)["gflops_per_second"]
        report.add(model=f"tf.matmul {args.matmul_size}x{args.matmul_size}", dtype=dtype,
                   roof_gflops_per_second=roofs[dtype], fraction_of_roof=1.0)
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in cnnkeras.list_architectures():
            report.skip(name, "not a registered architecture")
            continue
        shape = input_shape(name, args.image_size)
        batch = args.batch_size or default_batch(name)
        contenders = {dtype: contender(name, shape, args, DTYPES[dtype][0], batch_size=batch)
                      for dtype in dtypes}
        flops = analytic_flops(contenders[dtypes[0]][0])
        if flops is None:
            report.skip(f"{name} FLOP/s", "inspection.analysis.model_flops is not available")
        results = measure.train_throughput(contenders, steps=args.steps, repeats=args.repeats,
                                           warmup=args.warmup)
        for dtype, result in results.items():
            achieved = train_gflops(flops, result["images_per_second"])
            report.add(model=f"{name} {'x'.join(map(str, shape))}", dtype=dtype, batch=batch,
                       images_per_second=result["images_per_second"],
                       train_gflops_per_second=achieved, roof_gflops_per_second=roofs[dtype],
                       fraction_of_roof=achieved / roofs[dtype] if achieved else None)
        del contenders
        keras.backend.clear_session()
    report.notes.append("Synthetic random batch (timing only); bfloat16 rows train under the "
                        "mixed_bfloat16 policy (float32 weights and output).")
    report.save(args.output)
    return report


if __name__ == "__main__":
    main()
