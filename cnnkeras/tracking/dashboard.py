"""The MLflow UI over the project's tracking store, and the URLs that open the right views.

The latest search opens as a saved view of MLflow's runs page (MLflow 3.17's own "Save &
share view": a named view kept in an experiment tag, opened by ``viewStateShareKey``): the
search's trials only, best first, and in the chart view the parallel coordinates of the
hyperparameters against the trials' score.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional
from unittest import mock
from urllib.parse import urlencode

from cnnkeras import tracking, watchdog
from cnnkeras.tracking import schema

# MLflow 3.17 opens an experiment in its GenAI view unless asked for the training-runs view.
VIEW = "workflowType=machine_learning"
# MLflow 3.17 keeps each saved view of an experiment's runs page in the experiment tag
# ``mlflow.sharedViewState.<id>`` as {"name", "createdAt", "updatedAt", "state"}; the state
# is the page's search facets and UI state in JSON; ``?viewStateShareKey=<id>`` opens it.
SAVED_VIEW_TAG = "mlflow.sharedViewState."
SAVED_VIEW_KEY = "viewStateShareKey"
SEARCH_VIEW_ID = "cnnkeras-latest-search"  # one per experiment, rewritten by `cnnkeras ui`
SEARCH_SECTION_ID = "cnnkeras-search"
# The runs table's own first columns (run name, created, duration), as its grid names them.
LEADING_COLUMNS = ("attributes.`Run Name`", "runDateAndNestInfo", "duration")
# Params a trial logs beside its hyperparameters: what comparing runs needs.
TRIAL_FACTS = ("parameters", "flops_per_image", "replicas")
TRIALS_TABLE = "trials.csv"  # a finished search's table; its columns name the hyperparameters


def column(kind: str, key: str) -> str:
    """MLflow's key of a runs-table column, also the key it sorts by: ``metrics.`val_loss```."""
    return f"{kind}.`{key}`"


def lower_is_better(metric: str) -> bool:
    return "loss" in metric or "error" in metric


def runs_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table, in the model-training view."""
    return f"{base_url}/#/experiments/{experiment_id}?{VIEW}"


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    """One run's page (params, metrics, artifacts), in the model-training view."""
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}?{VIEW}"


def saved_view_url(base_url: str, experiment_id: str, view_id: str, *, charts: bool) -> str:
    """A saved view of the experiment's runs page: its runs table, or its chart view."""
    query = {SAVED_VIEW_KEY: view_id, **({"compareRunsMode": "CHART"} if charts else {})}
    return f"{base_url}/#/experiments/{experiment_id}/runs?{urlencode(query)}&{VIEW}"


def experiment_urls(base_url: str) -> list[tuple[str, str]]:
    """(experiment name, URL of its runs table) for every cnnkeras experiment in the store."""
    return [(e.name, runs_url(base_url, e.experiment_id)) for e in tracking.cnnkeras_experiments()]


@dataclass(frozen=True)
class Search:
    """A search's parent run and its finished trial runs."""

    run: object  # mlflow.entities.Run, as every run the store returns
    trials: tuple

    @property
    def name(self) -> str:
        return self.run.info.run_name

    @property
    def experiment_id(self) -> str:
        return self.run.info.experiment_id

    @property
    def objective(self) -> str:
        """The metric the tuner ranks by."""
        return self.run.data.params.get("tune.objective", "val_accuracy")

    @property
    def score(self) -> str:
        """A trial's score: its objective's best epoch (averaged over executions)."""
        return f"best_{self.objective}"


def latest_search(experiments=None) -> Optional[Search]:
    """The newest search of ``experiments`` (every cnnkeras experiment when None)."""
    experiments = experiments if experiments is not None else tracking.cnnkeras_experiments()
    newest = None
    for experiment in experiments:
        for run in tracking.find_runs(experiment.experiment_id,
                                      schema.kind_is(schema.SEARCH), max_results=1):
            if newest is None or run.info.start_time > newest.info.start_time:
                newest = run
    if newest is None:
        return None
    trials = tracking.find_runs(
        newest.info.experiment_id,
        schema.all_of(schema.children_of(newest.info.run_id), schema.FINISHED),
        max_results=1000)
    return Search(newest, tuple(trials))


def hyperparameters(search: Search) -> list[str]:
    """The names the search varies, in the order its space declares them.

    That order is the column order of the parent's ``trials.csv``; a search still
    running has no table yet, and its trials' params are taken alphabetically, less
    the facts and Hyperband's bookkeeping (``tuner/epochs``).
    """
    varied = {name for trial in search.trials for name in trial.data.params
              if name not in TRIAL_FACTS and not name.startswith("tuner/")}
    declared = [name for name in table_columns(search.run.info.run_id) if name in varied]
    return declared or sorted(varied)


def table_columns(run_id: str) -> list[str]:
    """The header of the run's ``trials.csv``; empty when it has none."""
    quiet = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # no bar among the URLs printed
    with tracking.artifact_dir() as folder, mock.patch.dict(os.environ, quiet):
        try:
            path = tracking.client().download_artifacts(run_id, TRIALS_TABLE, str(folder))
            with open(path, newline="") as handle:
                return next(csv.reader(handle), [])
        except Exception:  # no such artifact: MLflow raises its own exception or OSError
            return []


def search_view_state(search: Search, varied: list[str]) -> dict:
    """The runs page MLflow 3.17 restores from a saved view: the search's trials, best
    first, with the score and hyperparameters as columns, and a parallel coordinates
    chart of the hyperparameters against the score first in the chart view."""
    columns = [column("metrics", search.score),
               *(column("params", name) for name in (*varied, *TRIAL_FACTS[:2]))]
    parallel = {"uuid": f"{SEARCH_SECTION_ID}-parallel-coordinates", "type": "PARALLEL",
                "metricSectionId": SEARCH_SECTION_ID, "selectedParams": varied,
                "selectedMetrics": [search.score], "showAllRuns": True,
                "deleted": False, "isGenerated": False}
    # MLflow files every metric's chart into "Model metrics" and "System metrics", the last
    # two sections; a section of ours sorts before them, one chart across its full width.
    sections = [{"uuid": uuid, "name": name, "display": True, "isReordered": False,
                 "deleted": False, "isGenerated": uuid != SEARCH_SECTION_ID, **layout}
                for uuid, name, layout in (
                    (SEARCH_SECTION_ID, "Search", {"columns": 1, "cardHeight": 480}),
                    ("cnnkeras-model-metrics", "Model metrics", {}),
                    ("cnnkeras-system-metrics", "System metrics", {}))]
    return {
        "searchFilter": schema.children_of(search.run.info.run_id),
        "orderByKey": column("metrics", search.score),
        "orderByAsc": lower_is_better(search.objective),
        "selectedColumns": columns,
        "columnOrder": [*LEADING_COLUMNS, *columns],
        "columnWidths": {columns[0]: 170},  # the score's name in full
        "runsHiddenMode": "SHOW_ALL",
        "runListHidden": True,  # the chart view's run list: the chart takes the width
        "compareRunCharts": [parallel],
        "compareRunSections": sections,
    }


def save_search_view(search: Search) -> str:
    """Write (or rewrite) the search's saved view into its experiment; returns the view's id."""
    state = search_view_state(search, hyperparameters(search))
    envelope = {"name": f"{search.name}: trials by {search.score}",
                "createdAt": search.run.info.start_time, "updatedAt": int(time.time() * 1000),
                "state": json.dumps(state, separators=(",", ":"))}
    tracking.client().set_experiment_tag(search.experiment_id, SAVED_VIEW_TAG + SEARCH_VIEW_ID,
                                         json.dumps(envelope, separators=(",", ":")))
    return SEARCH_VIEW_ID


def where_to_look(base_url: str) -> list[str]:
    """The lines ``make ui`` prints: every experiment's runs table, then the latest search's
    trials (best first) and their parallel coordinates, as a saved view of MLflow's runs page."""
    lines = [f"  {name}: {url}" for name, url in experiment_urls(base_url)]
    search = latest_search()
    if search and search.trials:
        try:
            view = save_search_view(search)
        except Exception as err:  # a store that takes no writes: MLflow's exception or OSError
            return lines + [f"  (the view of '{search.name}' could not be saved: {err})"]
        lines += [
            f"  trials of '{search.name}' by {search.score}, best first: "
            f"{saved_view_url(base_url, search.experiment_id, view, charts=False)}",
            f"  compare the trials of '{search.name}' (parallel coordinates): "
            f"{saved_view_url(base_url, search.experiment_id, view, charts=True)}",
        ]
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
