"""Images per second of the two transfer phases (and of bottleneck extraction) per input size.

    python benchmarks/transfer_speed.py [--sizes 150 299] [--batch-size 16] [--steps 5]

The classifier is the one `cnnkeras transfer` trains (random base weights: speed does
not depend on the values). Input is a fixed batch of synthetic random pixels: this
measures compute, not input pipelines or accuracy. Each measurement compiles the
phase's step (graph mode, as `cnnkeras transfer` runs), takes ``--warmup`` untimed steps
(tracing included) and reports the median of ``--steps`` timed steps.

- phase 1: base frozen (training=False), augmentation + head trained;
- phase 2: fine-tuning from mixed7, batch normalisation frozen;
- bottlenecks: forward pass of the base alone (what cached phase 1 costs, once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import cnnkeras  # noqa: E402
from cnnkeras.training import compile_model  # noqa: E402
from cnnkeras.transfer import model as tmodel  # noqa: E402


def timed(step, warmup: int, steps: int) -> float:
    """Median seconds of ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure(size: int, batch: int, warmup: int, steps: int, classes: int = 5) -> dict:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = (rng.random((batch, size, size, 3)) * 255).astype("float32")  # synthetic, [0, 255]
    labels = rng.integers(0, classes, batch)
    model = cnnkeras.build("inception_v3", input_shape=(size, size, 3), num_classes=classes,
                           weights=None, frozen_base=True, dropout=0.2, augment=True)
    base = tmodel.base_of(model)
    extractor = tmodel.feature_extractor(model)
    result = {"size": size, "batch": batch}
    result["bottlenecks"] = batch / timed(lambda: extractor.predict_on_batch(images),
                                          warmup, steps)
    tmodel.freeze_base(base)
    compile_model(model, optimizer="adam", learning_rate=1e-3)
    result["phase1"] = batch / timed(lambda: model.train_on_batch(images, labels), warmup, steps)
    tmodel.unfreeze_top(base, "mixed7")
    compile_model(model, optimizer="adam", learning_rate=1e-4)
    result["phase2"] = batch / timed(lambda: model.train_on_batch(images, labels), warmup, steps)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 299])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/transfer_speed.json")
    args = parser.parse_args()
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU x{os.cpu_count()}"
    rows = [measure(size, args.batch_size, args.warmup, args.steps) for size in args.sizes]
    print(f"images/second, batch {args.batch_size}, median of {args.steps} steps, {device}")
    print(f"{'size':>5} {'phase 1':>9} {'phase 2':>9} {'bottlenecks':>12}")
    for row in rows:
        print(f"{row['size']:>5} {row['phase1']:>9.1f} {row['phase2']:>9.1f} "
              f"{row['bottlenecks']:>12.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": device, "machine": platform.processor() or
                               platform.machine(), "tensorflow": tf.__version__,
                               "steps": args.steps, "warmup": args.warmup, "rows": rows},
                              indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
