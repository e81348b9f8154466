"""KerasTuner's chief/worker mode: the chief's oracle server, and a launcher for one machine.

Three environment variables make a `cnnkeras tune` process part of one search:
``KERASTUNER_TUNER_ID`` (``chief`` for the one process that holds the oracle,
any other unique name, e.g. ``tuner0``, for a worker), ``KERASTUNER_ORACLE_IP``
and ``KERASTUNER_ORACLE_PORT`` (where the chief listens). The chief hands out
trials over gRPC and writes the summary; workers train trials and log them
under the chief's MLflow run.

On one machine::

    python -m tuning.distributed --workers 2 lecture_digits --max-trials 6

starts a chief and two workers on 127.0.0.1 with a free port, prefixes each
line of their output with its tuner id, and exits non-zero (stopping the
others) as soon as one of them fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Optional, Sequence

TUNER_ID = "KERASTUNER_TUNER_ID"
ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
POLL_SECONDS = 0.5


def role() -> Optional[str]:
    """``"chief"`` or ``"worker"`` in chief/worker mode, else None."""
    if ORACLE_IP not in os.environ:
        return None
    missing = [name for name in (TUNER_ID, ORACLE_PORT) if not os.environ.get(name)]
    if missing:
        raise ValueError(f"{ORACLE_IP} is set, so {' and '.join(missing)} must be too "
                         f"(chief/worker tuning). Received: {ORACLE_IP}={os.environ[ORACLE_IP]}")
    return "chief" if "chief" in os.environ[TUNER_ID] else "worker"


def serve(tuner) -> None:
    """Serve ``tuner``'s oracle to the workers until every trial has ended.

    KerasTuner's own chief loop polls every 20 s once the budget is spent; this
    one polls every ``POLL_SECONDS``, so the summary follows the last trial. The
    workers print each trial's lines; KerasTuner's display stays off.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    tuner.oracle.verbose = 0
    tuner.save()
    address = f"{os.environ[ORACLE_IP]}:{os.environ[ORACLE_PORT]}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(tuner.oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(address):
        raise ValueError(f"The chief cannot listen on {address}: is the port in use?")
    server.start()
    print(f"Chief serving the oracle on {address}.", flush=True)
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(tuner.oracle)):
            time.sleep(POLL_SECONDS)
    finally:
        server.stop(grace=1)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def pump(name: str, stream, out) -> None:
    """Copy a child's output line by line, each line prefixed with ``[name]``."""
    for line in iter(stream.readline, ""):
        out.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
        out.flush()


def start(name: str, command: list, env: dict) -> tuple:
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    thread = threading.Thread(target=pump, args=(name, process.stdout, sys.stdout), daemon=True)
    thread.start()
    return process, thread


def stop_all(processes: dict) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def prepare_store() -> None:
    """Create the tracking store's tables once, here, before the processes share it.

    Several processes creating a fresh SQLite store at once race on its schema
    migration, and all but one fail.
    """
    from cnnkeras import tracking

    tracking.client().search_experiments(max_results=1)


def launch(workers: int, tune_args: Sequence[str], *, host: str = "127.0.0.1",
           port: Optional[int] = None) -> int:
    """Run a chief and ``workers`` workers of one search; the first non-zero exit code, or 0."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1. Received: {workers}")
    port = port or free_port(host)
    prepare_store()
    command = [sys.executable, "-m", "cnnkeras", "tune", *tune_args]
    names = ["chief"] + [f"tuner{index}" for index in range(workers)]
    print(f"Chief on {host}:{port}, workers {', '.join(names[1:])}: {' '.join(command[1:])}",
          flush=True)
    children, threads = {}, []
    for name in names:
        env = {**os.environ, TUNER_ID: name, ORACLE_IP: host, ORACLE_PORT: str(port),
               "PYTHONUNBUFFERED": "1"}
        children[name], thread = start(name, command, env)
        threads.append(thread)
    try:
        while True:
            codes = {name: child.poll() for name, child in children.items()}
            failed = {name: code for name, code in codes.items() if code not in (None, 0)}
            if failed:
                name, code = next(iter(failed.items()))
                print(f"{name} exited with status {code}; stopping the others.", flush=True)
                stop_all(children)
                return code
            if all(code == 0 for code in codes.values()):
                return 0
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        stop_all(children)
        return 130
    except SystemExit:  # SIGTERM
        stop_all(children)
        raise
    finally:
        for thread in threads:
            thread.join(timeout=5)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tuning.distributed", allow_abbrev=False,
        description="Run a chief and N workers of one `cnnkeras tune` search on this machine. "
                    "Arguments after the options go to `cnnkeras tune`.")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address the chief listens on")
    parser.add_argument("--port", type=int, help="port the chief listens on (default: a free one)")
    args, tune_args = parser.parse_known_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return launch(args.workers, tune_args, host=args.host, port=args.port)
    except ValueError as err:
        print(f"tuning.distributed: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
