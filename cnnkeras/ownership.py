"""One process at a time: a folder held by a ``flock`` that names its owner's PID.

Used where two processes must never share work: a training run's backup
(``cnnkeras.training.checkpoints.claim``) and a search's KerasTuner folder
(``tuning.project.hold``). The lock is the kernel's, so it goes with the process
however that ends (SIGKILL included) and a stale lock file is no bar; the PID in
the file is only there to name the owner in the refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def hold(folder: Path, lock_name: str, refusal: Callable[[str], str]) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) or raise ``ValueError(refusal(owner_pid))``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / lock_name, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise ValueError(refusal(handle.read().strip() or "unknown")) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield folder
        finally:
            handle.seek(0)
            handle.truncate()
