"""3. Input pipeline cost: ``fit`` through our ``tf.data`` pipeline vs the same tensors in memory.

The pipeline (``cnnkeras.data.load``) decodes and fits images to size on its first
epoch, caches them as uint8, then shuffles, batches and casts to float32 every epoch.
The baseline is ``fit(x, y)`` on the very images and labels the pipeline produced
(float32 pixels in [0, 255], in memory), same model, batch and epochs.

The two alternate (A B A B ...): each round fits each model for two more epochs, so a
change of load on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Optional, Sequence

import keras

import cnnkeras
from benchmarks import measure
from cnnkeras import data, training


def fresh_model(args, input_shape, classes):
    keras.utils.set_random_seed(0)
    model = cnnkeras.build(args.model, input_shape=input_shape, num_classes=classes)
    return training.compile_model(model, optimizer="adam", learning_rate=1e-3)


def interleaved_epochs(fits: dict, rounds: int) -> dict:
    """Per-epoch wall seconds of each contender over ``rounds`` rounds; in each round every
    contender's ``fit`` runs two more epochs on the same model, one contender after the other."""
    seconds = {name: [] for name in fits}
    for _ in range(rounds):
        for name, fit in fits.items():
            clock = measure.EpochClock()
            fit(epochs=2, callbacks=[clock])
            seconds[name] += clock.seconds
    return seconds


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.input_pipeline",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--dataset", default="digits",
                       help="dataset spec, e.g. digits or idx:DIR or folder:DIR (default digits)")
    parse.add_argument("--model", default="lecture_cnn")
    parse.add_argument("--image-size", type=int, default=28)
    parse.add_argument("--channels", type=int, default=1)
    parse.add_argument("--batch-size", type=int, default=64)
    parse.add_argument("--limit", type=int, default=None, help="at most this many per split")
    measure.common_arguments(parse, repeats=4)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    report = measure.Report(
        "input_pipeline", "3. Input pipeline: fit through tf.data vs fit on in-memory tensors",
        ["source", "epoch", "seconds_median", "min_max", "images_per_second", "ratio_vs_memory"],
        settings={k: v for k, v in vars(args).items() if k != "output"})
    size = (args.image_size, args.image_size)
    plan = data.SplitPlan(0.0, 0.2, seed=0, limit=args.limit)
    loaded = data.load(args.dataset, image_size=size, channels=args.channels,
                       batch_size=args.batch_size, plan=plan)
    count = loaded.sizes["train"]
    shape = (*size, args.channels)
    x, y = measure.arrays(data.load(args.dataset, image_size=size, channels=args.channels,
                               batch_size=args.batch_size, plan=plan).train)
    in_memory, pipelined = (fresh_model(args, shape, loaded.num_classes) for _ in range(2))
    seconds = interleaved_epochs({
        "memory": lambda **kw: in_memory.fit(x, y, batch_size=args.batch_size, shuffle=True,
                                             verbose=0, **kw),
        "piped": lambda **kw: pipelined.fit(loaded.train, shuffle=False, verbose=0, **kw),
    }, rounds=args.warmup + args.repeats)
    memory, piped = seconds["memory"], seconds["piped"]
    steady = max(1, 2 * args.warmup)  # the first epoch traces (and fills the cache)
    baselines = {"first": memory[0], "steady": statistics.median(memory[steady:])}
    rows = [("in-memory tensors", "first", memory[:1]),
            ("in-memory tensors", "steady", memory[steady:]),
            ("tf.data pipeline", "first", piped[:1]),
            ("tf.data pipeline", "steady", piped[steady:])]
    for source, epoch, seconds in rows:
        median = statistics.median(seconds)
        report.add(source=source, epoch=epoch, seconds_median=median,
                   min_max=f"{min(seconds):.3g}-{max(seconds):.3g}",
                   images_per_second=count / median, ratio_vs_memory=median / baselines[epoch])
    report.notes.append("first: the first epoch (tracing; for the pipeline also decoding, "
                        "resizing and filling the cache); steady: the median of the epochs "
                        f"after the {args.warmup} warm-up round(s), two per round, rounds "
                        "alternating between the two.")
    report.notes.append(f"{count} training images of {args.dataset!r} (real data), model "
                        f"{args.model}; ratio_vs_memory > 1: the pipeline epoch is slower.")
    report.save(args.output)
    return report


if __name__ == "__main__":
    main()
