"""The MLflow UI over the project's tracking store, and the URLs that open the right views."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Optional

from cnnkeras import tracking, watchdog

# MLflow 3.17 opens an experiment in its GenAI view unless asked for the training-runs view.
VIEW = "workflowType=machine_learning"


def runs_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table, in the model-training view."""
    return f"{base_url}/#/experiments/{experiment_id}?{VIEW}"


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    """One run's page (params, metrics, artifacts), in the model-training view."""
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}?{VIEW}"


def compare_url(base_url: str, experiment_id: str, run_ids) -> str:
    """MLflow's compare page (parallel coordinates, scatter, contour) for these runs.

    The format of MLflow 3.17's ``getCompareRunPageRoute``; the view parameter keeps
    the model-training navigation (without it the page opens under GenAI evaluations).
    """
    runs = json.dumps(list(run_ids), separators=(",", ":"))
    return (f"{base_url}/#/compare-runs?runs={runs}&experiments=[\"{experiment_id}\"]"
            f"&{VIEW}")


def experiment_urls(base_url: str) -> list[tuple[str, str]]:
    """(experiment name, URL of its runs table) for every cnnkeras experiment in the store."""
    return [(e.name, runs_url(base_url, e.experiment_id)) for e in tracking.cnnkeras_experiments()]


def latest_search_trials(experiments=None) -> Optional[tuple[str, str, list[str]]]:
    """(search run name, experiment id, finished trial run ids) of the newest search."""
    experiments = experiments if experiments is not None else tracking.cnnkeras_experiments()
    newest = None
    for experiment in experiments:
        for run in tracking.find_runs(experiment.experiment_id,
                                      "tags.`cnnkeras.kind` = 'search'", max_results=1):
            if newest is None or run.info.start_time > newest.info.start_time:
                newest = run
    if newest is None:
        return None
    trials = tracking.find_runs(
        newest.info.experiment_id,
        f"tags.`{tracking.PARENT_TAG}` = '{newest.info.run_id}' "
        "and attributes.status = 'FINISHED'", max_results=1000)
    return newest.info.run_name, newest.info.experiment_id, [t.info.run_id for t in trials]


def where_to_look(base_url: str) -> list[str]:
    """The lines ``make ui`` prints: every experiment's runs table, the latest search's compare."""
    lines = [f"  {name}: {url}" for name, url in experiment_urls(base_url)]
    latest = latest_search_trials()
    if latest and len(latest[2]) >= 2:
        name, experiment_id, run_ids = latest
        lines.append(f"  compare the trials of '{name}': "
                     f"{compare_url(base_url, experiment_id, run_ids)}")
    return lines or ["  (no cnnkeras experiments yet: run `make tune` or `cnnkeras train`)"]


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_command(uri: str, *, host: str, port: int, workers: int,
                   allowed_hosts: Optional[str] = None) -> list[str]:
    """The ``mlflow ui`` command line ``serve`` runs.

    Bound beyond loopback, MLflow's host-header check would answer a machine that
    names this one by hostname or public address "403 Invalid Host header", so
    ``allowed_hosts`` defaults to ``*`` there (MLflow's ``--allowed-hosts``).
    """
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", str(workers)]
    if allowed_hosts is None and host not in LOOPBACK:
        allowed_hosts = "*"
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    return command


def server_environment() -> dict:
    """This environment, with MLflow's GenAI job runner off unless the user set it.

    The runner (judges, prompt optimisation, trace roll-ups) starts seven extra
    processes that a model-training dashboard never uses.
    """
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}


def serve(*, host: str = "127.0.0.1", port: int = 5000, workers: int = 1,
          allowed_hosts: Optional[str] = None) -> int:
    """Print where to look, then run ``mlflow ui`` in the foreground until Ctrl-C.

    The server runs in its own process group under ``cnnkeras.watchdog``, ended as
    a whole when this process is interrupted, terminated or hung up, and by the
    watchdog when this process is killed outright, so no worker outlives
    ``cnnkeras ui``.
    """
    if workers < 1:
        raise ValueError(f"--workers must be at least 1. Received: {workers}")
    uri = tracking.tracking_uri()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    reach = "only" if host in LOOPBACK else "for other machines too"
    print(f"MLflow UI for {uri}\n  {base}  (bound to {host} {reach}; another address or port: "
          "`make ui ARGS='--host 0.0.0.0 --port 5001'`)")
    if host not in LOOPBACK:
        print(f"warning: --host {host} serves the dashboard to other machines, and MLflow's UI "
              "has no authentication: anyone who reaches this port can read and delete runs.",
              file=sys.stderr)
    print("\n".join(where_to_look(base)), flush=True)
    command = server_command(uri, host=host, port=port, workers=workers,
                             allowed_hosts=allowed_hosts)
    server = subprocess.Popen(watchdog.watched(command), env=server_environment(),
                              start_new_session=True)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(server)


def stop(server: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    """SIGTERM to the server's whole process group; SIGKILL whatever is left after the grace."""
    deadline = time.monotonic() + grace_seconds
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.2)  # reap the leader, or the group never looks empty
            os.killpg(server.pid, 0)  # ProcessLookupError once every member has exited
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
