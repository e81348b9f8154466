"""``python -m benchmarks``: every benchmark with small defaults, each in its own process.

Lighter ones first, the heaviest (``throughput``, ``train_speed``, ``time_to_accuracy``)
last. A failing benchmark is reported and the rest still run; the exit status is 1
if any failed. ``results/summary.md`` collects the tables of this run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.measure import RESULTS

ORDER = ("input_pipeline", "precision", "roofline", "tuning_overhead", "throughput",
         "train_speed", "time_to_accuracy")
QUICK = {  # --quick: smallest sizes that still compare something
    "input_pipeline": ["--repeats", "2", "--limit", "400"],
    "precision": ["--models", "lecture_cnn", "--repeats", "3"],
    "roofline": ["--models", "lecture_cnn,resnet18", "--repeats", "3"],
    "tuning_overhead": ["--trials", "2", "--epochs", "1", "--limit", "300", "--repeats", "1"],
    "throughput": ["--models", "resnet50", "--image-size", "64", "--repeats", "2"],
    "train_speed": ["--models", "lecture_cnn", "--epochs", "2", "--repeats", "1"],
    "time_to_accuracy": ["--models", "lecture_cnn", "--repeats", "1", "--max-epochs", "8"],
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ORDER),
                        help=f"comma-separated subset of: {', '.join(ORDER)}")
    parser.add_argument("--mnist", default=None,
                        help="dataset spec of the MNIST test set for time_to_accuracy (skipped "
                             "without it) and train_speed (digits without it), e.g. idx:DIR")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    failed = []
    for name in [n for n in ORDER if n in chosen]:
        extra = list(QUICK[name]) if args.quick else []
        if name in ("train_speed", "time_to_accuracy") and args.mnist:
            extra += ["--dataset", args.mnist]
        command = [sys.executable, "-m", f"benchmarks.{name}", "--output", str(args.output),
                   *extra]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command).returncode != 0:
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - started:.0f} s", flush=True)
    tables = [args.output / f"{name}.md" for name in ORDER if name in chosen and name not in failed]
    summary = "\n".join(path.read_text() for path in tables if path.exists())
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "summary.md").write_text("# cnnkeras benchmarks\n\n" + summary)
    print(f"\nTables: {args.output / 'summary.md'}" +
          (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
