"""Run a command that must not outlive the process that asked for it.

``python -m cnnkeras.watchdog --parent PID -- COMMAND...`` starts COMMAND in the
watchdog's own process group and ends that whole group (SIGTERM, then SIGKILL
after a grace period) when PID goes away, however it went: Ctrl-C, SIGTERM,
SIGHUP from a closed terminal, or SIGKILL, which no handler in PID can see.
On Linux the kernel tells the watchdog at once (``PR_SET_PDEATHSIG``);
elsewhere it notices within half a second by polling its parent.

The caller starts the watchdog with ``start_new_session=True`` so the group is
the watchdog's, and may itself end the group with ``os.killpg``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Optional, Sequence

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5
GRACE_SECONDS = 10.0


def ask_kernel_for_parent_death_signal() -> None:
    """Have Linux send SIGTERM here when the parent dies; a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def end_group(child: subprocess.Popen, grace_seconds: float = GRACE_SECONDS) -> None:
    """SIGTERM to every process in this group but the watchdog; SIGKILL what remains."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group signal reaches us too
    group = os.getpgrp()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=grace_seconds)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.killpg(group, signal.SIGKILL)  # ends the watchdog too, and with it every straggler


def supervise(parent: int, command: Sequence[str]) -> int:
    ask_kernel_for_parent_death_signal()
    stop = []
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop.append(number))
    child = subprocess.Popen(list(command))
    while not stop and child.poll() is None:
        if os.getppid() != parent:  # re-parented: the parent is gone
            break
        time.sleep(POLL_SECONDS)
    if child.poll() is not None and not stop:
        return child.returncode
    end_group(child)
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnkeras.watchdog", description=__doc__)
    parser.add_argument("--parent", type=int, required=True, help="the PID to outlive not")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return supervise(args.parent, command)


def watched(command: Sequence[str]) -> list[str]:
    """``command`` wrapped so that it ends when this process does."""
    return [sys.executable, "-m", "cnnkeras.watchdog", "--parent", str(os.getpid()), "--",
            *command]


if __name__ == "__main__":
    sys.exit(main())
