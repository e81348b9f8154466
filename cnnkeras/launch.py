"""Start one command as N workers on this machine: a local rehearsal of a cluster run.

``python -m cnnkeras.launch --workers 2 -- python -m cnnkeras train lecture_cnn
--strategy multi_worker`` picks N free ports on 127.0.0.1, gives worker i the
``TF_CONFIG`` a machine of a real cluster would have (the same cluster, task
index i), starts the processes, prints their output line by line prefixed with
``[worker i]`` and exits with the first non-zero status if any worker fails,
stopping the others (a worker whose peer died would otherwise wait in a
collective). Run the same command again to resume from the workers' backups.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence, TextIO

GRACE_SECONDS = 10.0


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


def _stream(process: subprocess.Popen, prefix: str, out: TextIO, lock: threading.Lock) -> None:
    for line in process.stdout:
        with lock:
            out.write(f"{prefix} {line}" if line.endswith("\n") else f"{prefix} {line}\n")
            out.flush()


def _stop(processes: list) -> None:
    """SIGTERM the workers still running, then SIGKILL whoever ignores it."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch(command: Sequence[str], *, workers: int, host: str = "127.0.0.1",
           out: Optional[TextIO] = None, env: Optional[dict] = None) -> int:
    """Run ``command`` as ``workers`` processes of one cluster; 0 when all succeed."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1. Received: workers={workers}")
    if not command:
        raise ValueError("Give the command to run after `--`, e.g. -- python -m cnnkeras train")
    out = out or sys.stdout
    addresses = [f"{host}:{port}" for port in free_ports(workers, host)]
    lock = threading.Lock()
    processes, readers = [], []
    for index in range(workers):
        worker_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                      "TF_CONFIG": json.dumps(tf_config(addresses, index))}
        process = subprocess.Popen(list(command), env=worker_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        processes.append(process)
        reader = threading.Thread(target=_stream, args=(process, f"[worker {index}]", out, lock),
                                  daemon=True)
        reader.start()
        readers.append(reader)
    try:
        status = _watch(processes, out, lock)
    except KeyboardInterrupt:
        status = 130
    finally:
        _stop(processes)
        for reader in readers:
            reader.join(timeout=5)
    return status


def _exit_status(code: int) -> int:
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as shells say


def _watch(processes: list, out: TextIO, lock: threading.Lock) -> int:
    """Wait for every worker; at the first failure return its status (the rest get stopped)."""
    reported: set = set()
    while True:
        for index, process in enumerate(processes):
            code = process.poll()
            if code is None or index in reported:
                continue
            reported.add(index)
            with lock:
                out.write(f"[launch] worker {index} exited with status {_exit_status(code)}\n")
                out.flush()
            if code != 0:
                return _exit_status(code)
        if len(reported) == len(processes):
            return 0
        time.sleep(0.1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnkeras.launch", description=__doc__.splitlines()[0],
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
    sys.exit(main())
