"""Processes started together on this machine, and the multi-worker training launcher.

``Supervisor`` is the one piece of process supervision in cnnkeras: it starts
named processes, prints each line of their output prefixed with ``[name]``,
watches for exits and hands each exit to a *policy*, which says whether to carry
on or to stop everything (SIGTERM, then SIGKILL after ``GRACE_SECONDS``) with a
status. Multi-worker training (here) stops all at any failure; distributed tuning
(``tuning.distributed``) tolerates a lost worker and stops all when the chief fails.

``python -m cnnkeras.launch --workers 2 -- python -m cnnkeras train lecture_cnn
--strategy multi_worker`` picks N free ports on 127.0.0.1, gives worker i the
``TF_CONFIG`` a machine of a real cluster would have (the same cluster, task
index i), starts the processes, prints their output line by line prefixed with
``[worker i]`` and exits with the first non-zero status if any worker fails.
The survivors get ``SURVIVOR_SECONDS`` to notice the lost peer themselves (their
runs end FAILED with one line saying so); whoever still runs then is stopped.
Run the same command again to resume from the workers' backups.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, Optional, Sequence, TextIO

GRACE_SECONDS = 10.0  # between SIGTERM and SIGKILL when stopping, for every launcher
# How long a cluster's survivors get to notice a lost peer on their own (TensorFlow's
# coordination service misses its heartbeats after ~10 s), end their runs FAILED and leave
# with one line, before the launcher stops them.
SURVIVOR_SECONDS = 60.0
POLL_SECONDS = 0.1

# A policy gets a process's name and return code (negative: killed by that signal) and
# returns None to carry on, or the status to stop everything with.
Policy = Callable[[str, int], Optional[int]]


def exit_status(code: int) -> int:
    """A return code as shells report it: killed by signal N is 128 + N."""
    return code if code >= 0 else 128 - code


def describe(code: int) -> str:
    """``exited with status 2`` or ``died (signal 9)``."""
    return f"died (signal {-code})" if code < 0 else f"exited with status {code}"


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit``, so a launcher stops its processes on the way out."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


class Supervisor:
    """Named processes: their output prefixed with ``[name]``, their exits judged by a policy.

    Use as a context manager; leaving it stops whatever still runs::

        with Supervisor() as supervisor:
            supervisor.start("worker 0", command, env)
            status = supervisor.watch(policy)
    """

    def __init__(self, out: Optional[TextIO] = None):
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.processes: dict[str, subprocess.Popen] = {}
        self.readers: list[threading.Thread] = []

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        for reader in self.readers:
            reader.join(timeout=5)

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> None:
        """Start ``command`` as process ``name`` (unique), with ``env`` as its environment."""
        if name in self.processes:
            raise ValueError(f"A process named {name!r} was started already.")
        process = subprocess.Popen(list(command), env={**env, "PYTHONUNBUFFERED": "1"},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
        self.processes[name] = process
        reader = threading.Thread(target=self._pump, args=(name, process.stdout), daemon=True)
        reader.start()
        self.readers.append(reader)

    def _pump(self, name: str, stream) -> None:
        for line in stream:
            self.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")

    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()

    def say(self, text: str) -> None:
        """One line of the launcher's own: ``[launch] text``."""
        self.write(f"[launch] {text}\n")

    def running(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is None]

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every process to exit; True if they all did."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        return not self.running()

    def watch(self, policy: Policy) -> int:
        """Hand each exit, in start order, to ``policy`` until it returns a status (or all
        processes have exited: 0). Ctrl-C gives 130."""
        judged: set = set()
        try:
            while True:
                for name, process in self.processes.items():
                    code = process.poll()
                    if code is None or name in judged:
                        continue
                    judged.add(name)
                    verdict = policy(name, code)
                    if verdict is not None:
                        return verdict
                if len(judged) == len(self.processes):
                    return 0
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            return 130

    def stop(self) -> None:
        """SIGTERM the processes still running, then SIGKILL whoever ignores it."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stop_on_failure(supervisor: Supervisor) -> Policy:
    """Report every exit; the first failure stops all, with its status."""
    def policy(name: str, code: int) -> Optional[int]:
        supervisor.say(f"{name} exited with status {exit_status(code)}")
        return exit_status(code) if code else None

    return policy


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the OS reports free on ``host`` right now."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            handle.bind((host, 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def tf_config(addresses: Sequence[str], index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses`` (worker 0 is chief)."""
    if not 0 <= index < len(addresses):
        raise ValueError(f"index must be in [0, {len(addresses)}). Received: index={index}")
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


def launch(command: Sequence[str], *, workers: int, host: str = "127.0.0.1",
           out: Optional[TextIO] = None, env: Optional[dict] = None) -> int:
    """Run ``command`` as ``workers`` processes of one cluster; 0 when all succeed."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1. Received: workers={workers}")
    if not command:
        raise ValueError("Give the command to run after `--`, e.g. -- python -m cnnkeras train")
    addresses = [f"{host}:{port}" for port in free_ports(workers, host)]
    with Supervisor(out) as supervisor:
        for index in range(workers):
            supervisor.start(f"worker {index}", command, {
                **os.environ, **(env or {}), "TF_CONFIG": json.dumps(tf_config(addresses, index))})
        status = supervisor.watch(stop_on_failure(supervisor))
        survivors = supervisor.running()
        if status > 128 and status != 130 and survivors:  # a worker was killed, not failed
            supervisor.say(f"waiting up to {SURVIVOR_SECONDS:.0f} s for {', '.join(survivors)} "
                           "to notice and leave")
            supervisor.wait(SURVIVOR_SECONDS)
        return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnkeras.launch",
        description="Start one command as N workers on this machine: a local rehearsal of a "
                    "cluster run.",
        usage="python -m cnnkeras.launch [--workers N] [--host ADDR] -- COMMAND ...")
    parser.add_argument("--workers", type=int, default=2, help="processes to start (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address the workers listen on")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        status = launch(command, workers=args.workers, host=args.host)
    except (ValueError, OSError) as err:
        print(f"cnnkeras.launch: error: {err}", file=sys.stderr)
        return 2
    if status:
        print(f"cnnkeras.launch: a worker exited with status {status}", file=sys.stderr)
    return status


if __name__ == "__main__":
    exit_on_sigterm()
    sys.exit(main())
