"""The MLflow UI over the project's tracking store, and the URLs that open the right views."""

from __future__ import annotations

import subprocess
import sys

from cnnkeras import tracking

# MLflow 3.17 opens an experiment in its GenAI view unless asked for the training-runs view.
VIEW = "workflowType=machine_learning"


def experiment_urls(base_url: str) -> list[tuple[str, str]]:
    """(experiment name, URL of its runs table) for every cnnkeras experiment in the store."""
    urls = []
    for experiment in tracking.client().search_experiments():
        if experiment.tags.get(tracking.EXPERIMENT_KIND_TAG) != tracking.EXPERIMENT_KIND:
            continue
        urls.append((experiment.name,
                     f"{base_url}/#/experiments/{experiment.experiment_id}?{VIEW}"))
    return urls


def serve(*, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Print where to look, then run ``mlflow ui`` in the foreground until Ctrl-C."""
    uri = tracking.tracking_uri()
    base = f"http://{host}:{port}"
    print(f"MLflow UI for {uri}\n  {base}  (bound to {host}; change with --host/--port, "
          "e.g. `make ui ARGS='--port 5001'`)")
    for name, url in experiment_urls(base):
        print(f"  {name}: {url}")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", host, "--port", str(port)]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
