"""What every benchmark shares: medians after warm-up, synthetic batches, the report files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import keras
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def common_arguments(parser: argparse.ArgumentParser, *, repeats: int = 3) -> None:
    parser.add_argument("--repeats", type=int, default=repeats,
                        help=f"timed repetitions; the median is reported (default {repeats})")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed repetitions first (tracing, caches, thread pools)")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help="folder for the Markdown and JSON results")


class EpochClock(keras.callbacks.Callback):
    """Wall seconds of every epoch of a ``fit`` (its validation pass included)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


PLAIN_BATCH = 32  # Keras' default batch size, the plain-Keras baseline's
PLAIN_OPTIMIZER, PLAIN_LEARNING_RATE = "adam", 1e-3  # what compile(optimizer="adam") gives


def recipe_text(optimizer: str, learning_rate: float, schedule: str, batch_size: int) -> str:
    """``adam 0.004 cosine, batch 128``: how a row trained (a constant rate is not named)."""
    named = "" if schedule == "constant" else f" {schedule}"
    return f"{optimizer} {learning_rate:g}{named}, batch {batch_size}"


def plain_keras(model: keras.Model) -> keras.Model:
    """``model`` compiled as plain Keras would: Adam at its default 1e-3, sparse categorical
    cross-entropy, accuracy (the baseline of ``train_speed`` and ``time_to_accuracy``)."""
    model.compile(optimizer=PLAIN_OPTIMIZER, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A batched split concatenated into NumPy arrays: the same images and labels, in memory."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def timed(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return seconds


def spread(values: Sequence[float]) -> dict:
    """Median, min, max and count of a sample: what a row reports."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def synthetic_batch(input_shape, num_classes: int, batch_size: int, seed: int = 0):
    """Uniform random images (pixels in [0, 255], what every cnnkeras model takes) and labels:
    SYNTHETIC data, for timing only, never for accuracy."""
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, *input_shape), dtype=np.float32) * np.float32(255)
    return images, rng.integers(0, num_classes, size=batch_size)


def train_throughput(contenders: dict, *, steps: int, repeats: int, warmup: int) -> dict:
    """Images/s of ``model.train_on_batch`` for each ``label -> (compiled model, images,
    labels)``, one fixed batch each. Repetitions are interleaved (A B A B ...), so a change
    in the machine's load during the run hits every contender alike.
    """

    def runner(model, images, labels):
        def run():
            for _ in range(steps):
                model.train_on_batch(images, labels)
        return run

    runs = {label: runner(*contender) for label, contender in contenders.items()}
    for run in runs.values():
        timed(run, repeats=0, warmup=warmup)
    seconds = {label: [] for label in runs}
    for _ in range(repeats):
        for label, run in runs.items():
            seconds[label] += timed(run, repeats=1, warmup=0)
    results = {}
    for label, (_, images, _) in contenders.items():
        rates = [len(images) * steps / s for s in seconds[label]]
        results[label] = {"images_per_second": statistics.median(rates), "rates": spread(rates),
                          "step_seconds": statistics.median(seconds[label]) / steps}
    return results


def range_text(sample: dict) -> str:
    """``min-max`` of a ``spread`` for a table cell."""
    return f"{_cell(float(sample['min']))}-{_cell(float(sample['max']))}"


def machine() -> dict:
    """What the numbers depend on: CPU, cores, load when measured, library versions."""
    import keras
    import tensorflow as tf

    from cnnkeras import distribute
    from cnnkeras.training.conv_gradient import onednn_enabled

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "bfloat16_cpu": distribute.cpu_supports_bfloat16(), "onednn": onednn_enabled(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}


@dataclass
class Report:
    """One benchmark's table (rows of dicts), notes, settings and machine, saved twice."""

    name: str
    title: str
    columns: Sequence[str]
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def skip(self, what: str, why: str) -> None:
        print(f"[{self.name}] skipped {what}: {why}", flush=True)
        self.notes.append(f"Skipped {what}: {why}")

    def add(self, **row) -> None:
        self.rows.append(row)
        shown = ", ".join(f"{k}={_cell(v)}" for k, v in row.items())
        print(f"[{self.name}] {shown}", flush=True)

    def markdown(self, hardware: dict) -> str:
        lines = [f"## {self.title}", "",
                 "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        for row in self.rows:
            lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in self.columns) + " |")
        lines.append("")
        lines += [f"- {note}" for note in self.notes]
        lines.append(f"- Settings: {json.dumps(self.settings, default=str)}")
        lines.append(f"- Machine: {json.dumps(hardware)}")
        return "\n".join(lines) + "\n"

    def save(self, folder: Optional[Path] = None) -> Path:
        folder = Path(folder or RESULTS)
        folder.mkdir(parents=True, exist_ok=True)
        hardware = machine()
        (folder / f"{self.name}.md").write_text(self.markdown(hardware))
        payload = {"benchmark": self.name, "title": self.title, "rows": self.rows,
                   "notes": self.notes, "settings": self.settings, "machine": hardware,
                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (folder / f"{self.name}.json").write_text(json.dumps(payload, indent=2, default=str))
        print(f"\n{self.markdown(hardware)}\n[{self.name}] wrote {folder / self.name}.md/.json",
              flush=True)
        return folder / f"{self.name}.md"


def _cell(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
