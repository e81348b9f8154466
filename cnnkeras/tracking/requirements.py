"""What a logged model needs installed: the packages that trained it, pinned.

MLflow would otherwise infer them by loading the model in a subprocess (seconds per
logged model). With the pins given, MLflow still checks them against the installed
packages before it writes them: it first maps every installed distribution to its
modules, ~0.46 s (AMD EPYC Zen 4) of logging a search's winner, the largest single cost
of `make tune` outside its fits. Pins read from the installed packages a moment earlier
match them by construction, so ``pinned_without_check`` skips that check while the
model is logged. A package missing here is left out of the pins, not guessed.
"""

from __future__ import annotations

import contextlib
from importlib import metadata
from typing import Iterator

from mlflow.utils import environment

PACKAGES = ("tensorflow", "keras", "mlflow", "numpy", "pandas")
MLFLOW_CHECK = "warn_dependency_requirement_mismatches"  # as mlflow.utils.environment calls it


def pins() -> list[str]:
    """``name==version`` for each of ``PACKAGES`` that is installed."""
    found = []
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name}=={metadata.version(name)}")
    return found


@contextlib.contextmanager
def pinned_without_check() -> Iterator[list[str]]:
    """``pins()``, with MLflow's check of requirements against the installed packages off
    while the block runs (an MLflow without that check is left as it is)."""
    original = getattr(environment, MLFLOW_CHECK, None)
    if original is not None:
        setattr(environment, MLFLOW_CHECK, lambda requirements: None)
    try:
        yield pins()
    finally:
        if original is not None:
            setattr(environment, MLFLOW_CHECK, original)
