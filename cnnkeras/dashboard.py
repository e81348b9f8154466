"""The MLflow UI over the project's tracking store, and the URLs that open the right views."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Optional

from cnnkeras import tracking

# MLflow 3.17 opens an experiment in its GenAI view unless asked for the training-runs view.
VIEW = "workflowType=machine_learning"


def runs_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table, in the model-training view."""
    return f"{base_url}/#/experiments/{experiment_id}?{VIEW}"


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}"


def compare_url(base_url: str, experiment_id: str, run_ids) -> str:
    """MLflow's compare page (parallel coordinates, scatter, contour) for these runs."""
    runs = json.dumps(list(run_ids), separators=(",", ":"))
    return f"{base_url}/#/compare-runs?runs={runs}&experiments=[\"{experiment_id}\"]"


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


def serve(*, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Print where to look, then run ``mlflow ui`` in the foreground until Ctrl-C."""
    uri = tracking.tracking_uri()
    base = f"http://{host}:{port}"
    print(f"MLflow UI for {uri}\n  {base}  (bound to {host} only; another address or port: "
          "`make ui ARGS='--host 0.0.0.0 --port 5001'`)")
    print("\n".join(where_to_look(base)), flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", host, "--port", str(port)]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
