"""A search's KerasTuner project folder: which folder a search owns, who holds it, and
whether the state in it can be read.

The experiment, tuner, space and dataset identify a search. Each identity has its
own folder, ``<tune.directory>/<experiment>-<tuner>-<space>-<dataset>``, and (tagged
with that folder) its own MLflow parent run: another tuner or space is another
search, never a reload of this one's state. One process at a time holds a folder
(``fcntl.flock`` on ``search.lock``, with its PID in the file for the message); the
kernel drops the lock with the process, so a dead process's lock is taken over.

Damaged state is explained in one line naming the file and the way out, or
repaired where the data exists: a trial whose ``trial.json`` is unreadable is
re-run with the hyperparameters its MLflow run recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Mapping, Optional

from cnnkeras import ownership
from cnnkeras.config import ExperimentConfig
from tuning import report

LOCK = "search.lock"
TRIAL_FILE = "trial.json"

Recorded = Callable[[str], Optional[Mapping[str, str]]]  # trial id -> its run's params


def slug(text: str) -> str:
    """``text`` as a folder-name part; a short hash keeps apart specs that slug alike."""
    cleaned = re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_")[:40]
    if cleaned == text:
        return text
    return f"{cleaned}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def project_dir(config: ExperimentConfig) -> Path:
    """The folder of the search ``config`` describes (absolute)."""
    parts = (config.name, config.tune.tuner, config.tune.space, config.data.dataset)
    return Path(config.tune.directory).resolve() / "-".join(slug(part) for part in parts)


def hold(project: Path) -> contextlib.AbstractContextManager:
    """Hold ``project`` (created if missing) for this process, or refuse in one line."""
    return ownership.hold(project, LOCK, lambda owner: (
        f"This search is already running in process PID {owner} (lock {project / LOCK}). "
        "Wait for it or stop it; another tuner, space or dataset is another search."))


def clear(project: Path) -> None:
    """Delete the search's state (``tune.overwrite``), keeping the lock this process holds."""
    for item in project.iterdir():
        if item.name != LOCK:
            shutil.rmtree(item) if item.is_dir() else item.unlink()


def afresh(project: Path) -> str:
    return f"delete the folder {project} to start this search afresh"


def read_json(path: Path):
    """The parsed file, or None when it is missing or cut off."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_state(project: Path, recorded: Recorded) -> None:
    """Make the saved state loadable, or raise ``ValueError`` saying which file and what to do.

    ``oracle.json`` cut off mid-write comes back from its last good copy; an unreadable
    ``<tuner>.json`` (KerasTuner keeps nothing in it) is rewritten; a trial folder the
    oracle never recorded (killed while being created) is removed; a recorded trial
    whose ``trial.json`` is unreadable is re-run from its MLflow params.
    """
    report.restore_oracle(project)
    oracle_file = project / report.ORACLE
    trials = sorted(p for p in project.glob("trial_*") if p.is_dir())
    tuners = [p for p in project.glob("*.json") if p.name != report.ORACLE]
    if not oracle_file.exists():
        if trials or tuners:
            raise ValueError(f"{oracle_file} is missing, but {project} holds trials: "
                             f"{afresh(project)}.")
        return
    state = read_json(oracle_file)
    if not isinstance(state, dict):
        raise ValueError(f"{oracle_file} cannot be read and has no good copy "
                         f"({report.BACKUP}): {afresh(project)}.")
    for path in tuners:
        if read_json(path) is None:
            path.write_text("{}")
            print(f"{path} could not be read; rewrote it (KerasTuner keeps no state there).")
    requeued = []
    for folder in (f for f in trials if read_json(f / TRIAL_FILE) is None):
        trial_id = folder.name[len("trial_"):]
        if trial_id not in state.get("start_order", []):
            shutil.rmtree(folder)
            print(f"Removed {folder}: its trial was cut off before the search recorded it.")
            continue
        rewrite_trial(folder / TRIAL_FILE, trial_id, state, recorded, project)
        requeue(state, trial_id)
        requeued.append(trial_id)
        print(f"{folder / TRIAL_FILE} could not be read; trial {trial_id} will be re-run with "
              "the hyperparameters its MLflow run recorded.")
    if requeued:
        temporary = project / f"{report.ORACLE}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(state))
        os.replace(temporary, oracle_file)
        report.backup_oracle(project)


def rewrite_trial(path: Path, trial_id: str, state: dict, recorded: Recorded,
                  project: Path) -> None:
    """A fresh ``trial.json`` (status RUNNING) with the values the trial's run recorded."""
    import keras_tuner as kt  # here: holding a folder (``hold``) needs no TensorFlow

    space = kt.HyperParameters.from_config(state["hyperparameters"])
    params = recorded(trial_id) or {}
    missing = [hp.name for hp in space.space if hp.name not in params]
    if not params or missing:
        raise ValueError(f"{path} cannot be read and trial {trial_id}'s hyperparameters were "
                         f"not recorded in MLflow: {afresh(project)}.")
    space.values = {hp.name: typed(hp, params[hp.name]) for hp in space.space}
    space.values.update({k: v if k == "tuner/trial_id" else int(v)
                         for k, v in params.items() if k.startswith("tuner/")})
    kt.engine.trial.Trial(space, trial_id=trial_id).save(str(path))


def typed(hp, text: str):
    """An MLflow param (text) back as the hyperparameter's own value."""
    for value in getattr(hp, "values", None) or ():
        if str(value) == text:
            return value
    if isinstance(hp.default, bool):
        return text == "True"
    return type(hp.default)(text)


def requeue(state: dict, trial_id: str) -> None:
    """Mark the trial ongoing in the oracle's state: KerasTuner re-runs ongoing trials."""
    ongoing = state.setdefault("ongoing_trials", {})
    if trial_id not in ongoing.values():
        ongoing[f"recovered_{trial_id}"] = trial_id
    state["end_order"] = [t for t in state.get("end_order", []) if t != trial_id]
