"""KerasTuner's chief/worker mode: the chief's oracle, and a launcher for one machine.

KerasTuner's ``KERASTUNER_TUNER_ID`` (``chief`` for the one process holding the
oracle, another unique name, e.g. ``tuner0``, for each worker),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` make `cnnkeras tune`
processes one search: the chief serves its oracle from ``tuner.search()``, as
KerasTuner does, and writes the summary; workers log trials under its MLflow run.

``python -m tuning.distributed --workers 2 lecture_digits --max-trials 6`` starts a
chief and two workers (tuner ids ``tuner<i>``) on 127.0.0.1 under
``cnnkeras.launch.Supervisor``, their lines prefixed ``[chief]``, ``[worker i]``.
The chief's failure stops everything, with its status. A worker that dies is
survived: the launcher tells the chief (``WorkerLost``, on ``CNNKERAS_LAUNCHER_PORT``),
which ends its trial run KILLED and the trial ``INVALID`` with a retry left, so the
oracle hands it out again, whole, to the next worker that asks; a lost attempt does
not count against the budget. Workers stay while a trial may come back; only when
none is left does the launcher stop the chief (resume with the same command).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import sys
import threading
import time
from concurrent import futures
from typing import Callable, Optional, Sequence

from cnnkeras import launch as supervision

TUNER_ID = "KERASTUNER_TUNER_ID"
ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
LAUNCHER_PORT = "CNNKERAS_LAUNCHER_PORT"  # where the chief hears of lost workers
CHIEF = "chief"
POLL_SECONDS = 0.5
CHIEF_WAIT_SECONDS = 120  # for the chief to answer (it may still be loading its data)
WORKER_LOST = ("cnnkeras.Launcher", "WorkerLost")


def role() -> Optional[str]:
    """``"chief"`` or ``"worker"`` in chief/worker mode, else None."""
    if ORACLE_IP not in os.environ:
        return None
    missing = [name for name in (TUNER_ID, ORACLE_PORT) if not os.environ.get(name)]
    if missing:
        raise ValueError(f"{ORACLE_IP} is set, so {' and '.join(missing)} must be too "
                         f"(chief/worker tuning). Received: {ORACLE_IP}={os.environ[ORACLE_IP]}")
    return CHIEF if CHIEF in os.environ[TUNER_ID] else "worker"


def under_lock(oracle, function: Callable, *args):
    """``function(*args)`` holding the oracle's own lock, as its methods do."""
    import keras_tuner as kt

    return kt.synchronized(lambda _oracle: function(*args))(oracle)


def hand_back(oracle, tuner_id: str) -> Optional[str]:
    """Forget tuner ``tuner_id``; put the trial it held back in line. Its id, or None.

    Call it holding the oracle's lock. ``Oracle.end_trial`` re-queues an ``INVALID``
    trial with a retry left (``create_trial`` serves it first); the lost attempt gets
    that retry for this call only, not a trial that crashes by itself."""
    import keras_tuner as kt

    oracle.tuner_ids.discard(tuner_id)
    trial = oracle.ongoing_trials.get(tuner_id)
    if trial is None:
        return None
    attempts = oracle.get_state()["run_times"].get(trial.trial_id, 0)
    retries = oracle.max_retries_per_trial
    trial.status = kt.engine.trial.TrialStatus.INVALID
    trial.message = f"Tuner {tuner_id} was lost during this trial."
    oracle.max_retries_per_trial = max(retries, attempts + 1)
    try:
        oracle.end_trial(trial)
    finally:
        oracle.max_retries_per_trial = retries
    oracle.save()  # end_trial saved before it forgot the tuner's trial
    return trial.trial_id


class Dispatcher:
    """The chief's oracle as KerasTuner's chief serves it: unchanged, except that a
    worker waits (an ``IDLE`` trial) while a trial may still come back instead of
    leaving, and that the trial of a lost worker goes back in line (``lose``)."""

    def __init__(self, oracle):
        self.oracle = oracle
        self.spent = False  # the oracle said STOPPED: nothing new to hand out
        self.returned: list = []  # ids of lost workers' trials, not yet handed out again

    def __getattr__(self, name):  # the oracle's other calls, unchanged
        return getattr(self.oracle, name)

    def create_trial(self, tuner_id: str):
        trial = under_lock(self.oracle, self.next_trial, tuner_id)
        if trial.status == "IDLE":
            time.sleep(POLL_SECONDS)  # KerasTuner's worker asks again at once
        return trial

    def next_trial(self, tuner_id: str):
        import keras_tuner as kt

        oracle = self.oracle
        if not (self.spent and not self.returned and oracle.ongoing_trials
                and tuner_id not in oracle.ongoing_trials):
            trial = oracle.create_trial(tuner_id)  # a returned trial first, as KerasTuner does
            self.returned = [other for other in self.returned if other != trial.trial_id]
            if trial.status != "STOPPED":
                return trial
            self.spent = True
            if not oracle.ongoing_trials:
                return trial
            oracle.tuner_ids.add(tuner_id)  # KerasTuner forgot it on STOPPED; it waits instead
        return kt.engine.trial.Trial(oracle.get_space(), status="IDLE")

    def finished(self) -> bool:
        """Every trial of the budget has ended (call it holding the oracle's lock)."""
        return self.spent and not self.oracle.ongoing_trials and not self.returned

    def lose(self, tuner_id: str) -> dict:
        """Tuner ``tuner_id`` is gone: ``{"trial": the id handed back or None, "finished"}``."""
        def lost() -> dict:
            trial_id = hand_back(self.oracle, tuner_id)
            if trial_id is not None:
                self.returned.append(trial_id)
            return {"trial": trial_id, "finished": self.finished()}

        return under_lock(self.oracle, lost)

    def done(self) -> bool:
        """The budget is spent and every tuner has been told so: the chief may leave."""
        return under_lock(self.oracle, lambda: self.finished() and not self.oracle.tuner_ids)


def check_free(host: str, port: str) -> None:
    """``ValueError`` unless the chief can listen on ``host:port``."""
    try:
        socket.create_server((host, int(port))).close()  # gRPC would share a port in use
    except OSError as err:
        raise ValueError(f"The chief cannot listen on {host}:{port}: is the port in use? "
                         f"({err.strerror})") from None


def listen_for_launcher(dispatcher: Dispatcher, exp_id: str):
    """The started gRPC server of the ``WorkerLost`` call (tuner id in, ``Dispatcher.lose``'s
    answer out, as JSON), on ``CNNKERAS_LAUNCHER_PORT``; None when that is unset."""
    import grpc

    from cnnkeras import tracking

    if not os.environ.get(LAUNCHER_PORT):
        return None  # a chief started by hand: no launcher reports lost workers

    def worker_lost(request: bytes, context) -> bytes:
        tracking.end_orphaned_runs(exp_id)  # the lost worker's trial run ends KILLED
        return json.dumps(dispatcher.lose(request.decode())).encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        WORKER_LOST[0], {WORKER_LOST[1]: grpc.unary_unary_rpc_method_handler(worker_lost)}),))
    server.add_insecure_port(f"{os.environ[ORACLE_IP]}:{os.environ[LAUNCHER_PORT]}")
    server.start()
    return server


def serve(tuner) -> None:
    """Serve ``tuner``'s oracle to the workers until every trial has ended.

    KerasTuner's chief (``tuner.search()`` under ``KERASTUNER_TUNER_ID=chief``) serves
    ``tuner.oracle``, here the ``Dispatcher`` around it, and returns 20 s or more after
    the last trial; so it runs on a daemon thread, and the chief leaves once
    ``Dispatcher.done``. The workers print the trials' lines; KerasTuner's stay off."""
    oracle, address = tuner.oracle, (os.environ[ORACLE_IP], os.environ[ORACLE_PORT])
    oracle.verbose = 0
    check_free(*address)
    dispatcher = Dispatcher(oracle)
    launcher = listen_for_launcher(dispatcher, tuner.tracker.exp_id)
    chief = threading.Thread(target=tuner.search, name="KerasTuner chief", daemon=True)
    tuner.oracle = dispatcher
    try:
        chief.start()
        print("Chief serving the oracle on {}:{}.".format(*address), flush=True)
        while not dispatcher.done():
            if not chief.is_alive() and not dispatcher.done():
                raise RuntimeError("KerasTuner's chief stopped serving before the search ended.")
            time.sleep(POLL_SECONDS)
    finally:
        tuner.oracle = oracle
        if launcher is not None:
            launcher.stop(grace=1)


def tell_chief(address: str, tuner_id: str, chief_running: Callable[[], bool]
               ) -> Optional[dict]:
    """``WorkerLost(tuner_id)`` to the chief at ``address``: its answer, or None when the
    chief stopped or did not answer within ``CHIEF_WAIT_SECONDS``."""
    import grpc

    deadline = time.monotonic() + CHIEF_WAIT_SECONDS
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        ready = grpc.channel_ready_future(channel)
        while not ready.done():
            if not chief_running() or time.monotonic() > deadline:
                return None
            time.sleep(POLL_SECONDS)
        call = channel.unary_unary("/{}/{}".format(*WORKER_LOST))
        try:
            return json.loads(call(tuner_id.encode(), timeout=CHIEF_WAIT_SECONDS))
        except grpc.RpcError:
            return None


def on_exit(supervisor: supervision.Supervisor, address: str, tuner_ids: dict, name: str,
            code: int) -> Optional[int]:
    """The tuning launcher's policy: the chief's failure stops all, with its status; a lost
    worker's trial is handed out again; no worker left to finish stops the chief."""
    status = supervision.exit_status(code)
    if name == CHIEF:
        if code == 0:  # its workers have been told to leave
            if not supervisor.wait(supervision.GRACE_SECONDS):
                supervisor.say("the search is done; stopping the workers still running.")
            return 0
        supervisor.say(f"chief exited with status {status}; stopping the others.")
        return status
    if code == 0:
        return None
    answer = tell_chief(address, tuner_ids[name], lambda: CHIEF in supervisor.running())
    if answer is None:
        outcome = "; the chief could not be told"
    elif answer["trial"] is None:
        outcome = " holding no trial"
    else:
        outcome = f" during trial {answer['trial']}; trial {answer['trial']} is handed out again"
    supervisor.say(f"{name} {supervision.describe(code)}{outcome}")
    workers_left = [other for other in supervisor.running() if other != CHIEF]
    if CHIEF not in supervisor.running() or workers_left or (answer and answer["finished"]):
        return None
    supervisor.say("no worker is left to finish the search; stopping the chief.")
    return status


def prepare_store() -> None:
    """Create the tracking store's tables here, before the processes share it: several
    processes creating a fresh SQLite store race on its schema migration."""
    from cnnkeras import tracking

    tracking.client().search_experiments(max_results=1)


def launch(workers: int, tune_args: Sequence[str], *, host: str = "127.0.0.1",
           port: Optional[int] = None, out=None) -> int:
    """Run a chief and ``workers`` workers of one search: the chief's exit status, or the
    status that stopped it (see ``on_exit``)."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1. Received: {workers}")
    free = supervision.free_ports(2, host)
    port = port or free[0]
    launcher_port = next(other for other in free if other != port)
    prepare_store()
    command = [sys.executable, "-m", "cnnkeras", "tune", *tune_args]
    tuner_ids = {f"worker {index}": f"tuner{index}" for index in range(workers)}
    env = {**os.environ, ORACLE_IP: host, ORACLE_PORT: str(port),
           LAUNCHER_PORT: str(launcher_port)}
    with supervision.Supervisor(out) as supervisor:
        supervisor.say(f"chief on {host}:{port} and {workers} workers (tuner ids "
                       f"{', '.join(tuner_ids.values())}): {' '.join(command[1:])}")
        for name, tuner_id in {CHIEF: CHIEF, **tuner_ids}.items():
            supervisor.start(name, command, {**env, TUNER_ID: tuner_id})
        return supervisor.watch(functools.partial(on_exit, supervisor,
                                                  f"{host}:{launcher_port}", tuner_ids))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tuning.distributed", allow_abbrev=False,
        description="Run a chief and N workers of one `cnnkeras tune` search on this machine. "
                    "Arguments after the options go to `cnnkeras tune`.")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address the chief listens on")
    parser.add_argument("--port", type=int, help="port the chief listens on (default: a free one)")
    args, tune_args = parser.parse_known_args(argv)
    try:
        return launch(args.workers, tune_args, host=args.host, port=args.port)
    except ValueError as err:
        print(f"tuning.distributed: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    supervision.exit_on_sigterm()
    sys.exit(main())
