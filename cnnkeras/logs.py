"""How much TensorFlow and CUDA say on the command line.

Below ``--log-level debug`` a CPU-only machine shows none of TensorFlow's start-up
lines: its C++ log is set to errors-only-when-fatal (``TF_CPP_MIN_LOG_LEVEL=3``,
unless the user set it), and the lines that are written before that setting
applies (``Could not find cuda drivers``, absl's ``InitializeLog`` notice) are
filtered out of what ``import tensorflow`` writes to stderr; anything else it
writes still reaches the terminal. At ``debug`` everything is shown.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
from typing import Iterator

LEVELS = ("debug", "info", "warning", "error")
NOISE = re.compile(
    r"absl::InitializeLog|cudart_stub|cuda_platform|cuInit|cpu_feature_guard|"
    r"oneDNN custom operations|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation_placer|TF-TRT Warning|rebuild TensorFlow with the appropriate compiler"
)


def configure(level: str = "warning") -> None:
    """Set Python's and TensorFlow's log levels for a command-line process (and its children)."""
    if level not in LEVELS:
        raise ValueError(f"--log-level must be one of {', '.join(LEVELS)}. Received: {level!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if level == "debug" else "3")
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@contextlib.contextmanager
def filtered_stderr(pattern: re.Pattern = NOISE) -> Iterator[None]:
    """Capture what C++ code writes to file descriptor 2; pass on the lines that are not noise."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (a daemon): nothing to capture
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines()
                    if line.strip() and not pattern.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def import_tensorflow() -> None:
    """Import TensorFlow now, without its start-up noise unless ``TF_CPP_MIN_LOG_LEVEL=0``."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        importlib.import_module("tensorflow")
        return
    with filtered_stderr():
        importlib.import_module("tensorflow")
