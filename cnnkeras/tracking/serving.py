"""`cnnkeras serve`: MLflow's scoring server for a logged or registered model.

``mlflow models serve --env-manager local`` (this environment, no new one) answers
``POST /invocations`` on 127.0.0.1 by default. A cnnkeras model's pyfunc answers
with one probability column per class name, so each prediction reads
``{"daisy": 0.91, "dandelion": 0.02, ...}``. The server runs in its own process
group under ``cnnkeras.watchdog`` and is ended with the command, as ``cnnkeras ui``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow

from cnnkeras import watchdog
from cnnkeras.tracking import dashboard
from cnnkeras.tracking.store import client, tracking_uri


def check_model(uri: str) -> dict:
    """The metadata of the model at ``uri``; one line naming what exists when it does not."""
    from mlflow.models import get_model_info

    try:
        return dict(get_model_info(uri).metadata or {})
    except (mlflow.exceptions.MlflowException, OSError) as err:
        names = sorted(model.name for model in client().search_registered_models())
        known = ", ".join(names) if names else "none yet (`cnnkeras train --register`, " \
                                                "`make tune`)"
        raise ValueError(f"No model at {uri} ({str(err).splitlines()[0][:160]}). Registered "
                         f"models: {known}. Give models:/NAME/VERSION, models:/NAME/latest "
                         "or runs:/RUN_ID/model.") from None


def server_command(uri: str, *, host: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", uri,
            "--env-manager", "local", "--host", host, "--port", str(port),
            "--workers", str(workers)]


def example_request(meta: dict) -> str:
    """A curl line with one all-black image at the model's input shape."""
    shape = meta.get("input_shape") or [28, 28, 1]
    image = [[[0] * shape[-1]] * shape[1]] * shape[0]
    body = json.dumps({"inputs": [image]}, separators=(",", ":"))
    if len(body) > 200:
        body = '{"inputs": [IMAGE]}  (IMAGE: ' + "x".join(map(str, shape)) + " nested lists)"
    return body


def serve_model(uri: str, *, host: str = "127.0.0.1", port: int = 5001, workers: int = 1) -> int:
    """Run the scoring server for ``uri`` in the foreground until Ctrl-C."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1. Received: {workers}")
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri()  # runs:/ and models:/ resolve here
    client()  # the store checked (one line if it is unusable) and MLflow's set-up chatter off
    meta = check_model(uri)
    names = meta.get("class_names")
    print(f"Serving {uri} at http://{host}:{port}/invocations "
          f"(input {meta.get('input_shape')}, pixels {meta.get('input_range')}; "
          f"classes: {', '.join(names) if names else 'unnamed'})\n"
          f"  curl -s http://{host}:{port}/invocations -H 'Content-Type: application/json' "
          f"-d '{example_request(meta)}'", flush=True)
    # MLflow starts `uvicorn` by name: this interpreter's scripts folder goes first on PATH,
    # so a virtual environment that was never activated serves too
    scripts = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
    server = subprocess.Popen(watchdog.watched(server_command(uri, host=host, port=port,
                                                              workers=workers)),
                              env=env, start_new_session=True)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        dashboard.stop(server)
