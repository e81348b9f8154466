"""What a finished search leaves behind: trial table, best-trial tags, plot, printed summary.

Also keeps a last-good copy of KerasTuner's ``oracle.json``, which KerasTuner
writes in place: a search killed mid-write resumes from the copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from cnnkeras import tracking
from cnnkeras.inspection import viz
from cnnkeras.tracking import schema

ORACLE = "oracle.json"
BACKUP = "oracle.json.good"


def backup_oracle(project: Path) -> None:
    """Copy a parseable oracle.json aside, atomically."""
    source = project / ORACLE
    try:
        text = source.read_text()
        json.loads(text)
    except (OSError, ValueError):
        return
    temporary = project / f"{BACKUP}.{os.getpid()}.tmp"
    temporary.write_text(text)  # the text that parsed, not a second read of a moving file
    os.replace(temporary, project / BACKUP)


def restore_oracle(project: Path) -> bool:
    """Put the last good oracle.json back when the current one is unreadable; True if it did."""
    source, backup = project / ORACLE, project / BACKUP
    if not source.exists() or not backup.exists():
        return False
    try:
        json.loads(source.read_text())
        return False
    except ValueError:
        shutil.copyfile(backup, source)
        print(f"{source} was cut off mid-write; restored the last good copy.")
        return True


@dataclass(frozen=True)
class Summary:
    trials: pd.DataFrame
    objective: str
    best_trial_id: Optional[str]
    best_run_id: Optional[str]
    best_score: Optional[float]
    parent_run_id: str
    pruned_geometry: int = 0  # candidates the oracle never made trials: they could not fit

    def count(self, status: str) -> int:
        return int((self.trials["status"] == status).sum()) if len(self.trials) else 0


def trial_table(oracle, exp_id: str, parent_run_id: str) -> pd.DataFrame:
    """One row per trial: id, status, score, reason, MLflow run id and hyperparameters.

    The reason is the one the trial's run recorded (a chief's oracle does not
    receive its workers' messages), else the last line of the oracle's message.
    """
    runs = {
        run.data.tags.get(schema.TRIAL_ID_TAG): run
        for run in tracking.find_runs(exp_id, schema.children_of(parent_run_id), max_results=5000)
    }
    rows = []
    for trial_id, trial in sorted(oracle.trials.items(), key=lambda item: trial_order(item[0])):
        run = runs.get(trial_id)
        message = (trial.message or "").strip().splitlines()
        reason = re.sub(r"^[\w.]+(Error|Exception): ", "", message[-1]) if message else ""
        if run is not None and trial.status != "COMPLETED":
            reason = run.data.tags.get(schema.FAILURE_REASON_TAG, reason)
        rows.append({
            "trial_id": trial_id,
            "status": trial.status,
            "score": trial.score,
            "reason": reason,
            "run_id": run.info.run_id if run is not None else None,
            **trial.hyperparameters.values,
        })
    return pd.DataFrame(rows)


def trial_order(trial_id: str) -> tuple:
    """Trial ids by number: KerasTuner pads them to the budget's width, which can grow."""
    return (int(trial_id), trial_id) if trial_id.isdigit() else (float("inf"), trial_id)


def summarize(oracle, exp_id: str, parent: tracking.Run, config) -> Summary:
    """Tag the best trial, log the trial table and the comparison plot to the parent run."""
    table = trial_table(oracle, exp_id, parent.run_id)
    objective = oracle.objective.name
    completed = table[table["status"] == "COMPLETED"] if len(table) else table
    best = None
    if len(completed) and completed["score"].notna().any():
        direction = oracle.objective.direction
        best = completed.loc[(completed["score"].idxmax() if direction == "max"
                              else completed["score"].idxmin())]
    summary = Summary(table, objective, best["trial_id"] if best is not None else None,
                      best["run_id"] if best is not None else None,
                      float(best["score"]) if best is not None else None, parent.run_id,
                      getattr(oracle, "pruned_geometry", 0))
    log_summary(summary, parent)
    return summary


def log_summary(summary: Summary, parent: tracking.Run) -> None:
    rejected = (summary.trials["reason"].str.contains("rejected by geometry").sum()
                if len(summary.trials) else 0)
    parent.log_metrics({
        "trials_total": len(summary.trials), "trials_completed": summary.count("COMPLETED"),
        "trials_failed": summary.count("FAILED"), "trials_rejected_geometry": int(rejected),
        "candidates_pruned_geometry": summary.pruned_geometry,
    })
    with tracking.artifact_dir() as folder:
        csv = folder / "trials.csv"
        summary.trials.to_csv(csv, index=False)
        parent.log_artifact(csv)
        completed = summary.trials[summary.trials["status"] == "COMPLETED"]
        if len(completed):
            bookkeeping = [c for c in completed.columns if c.startswith("tuner/")]
            plot = viz.plot_parallel_coordinates(
                completed, summary.objective, folder / "parallel_coordinates.png",
                exclude=("trial_id", "status", "score", "reason", "run_id", *bookkeeping))
            parent.log_artifact(plot, "plots")
    if summary.best_run_id:
        parent.set_tags({"best_trial_id": summary.best_trial_id,
                         "best_run_id": summary.best_run_id})
        parent.log_metrics({f"best_{summary.objective}": summary.best_score})
        tracking.Run(summary.best_run_id).set_tags({"best_trial": "true"})


def print_summary(summary: Summary, exp_id: str) -> None:
    table = summary.trials
    rejected = table[table["reason"].str.contains("rejected by geometry")] if len(table) else table
    print(f"\n{len(table)} trials: {summary.count('COMPLETED')} completed, "
          f"{summary.count('FAILED')} failed ({len(rejected)} rejected by geometry); "
          f"{summary.pruned_geometry} candidates pruned by geometry before training.")
    for _, row in rejected.iterrows():
        print(f"  trial {row['trial_id']}: {row['reason']}")
    if summary.best_trial_id is not None:
        best = table[table["trial_id"] == summary.best_trial_id].iloc[0]
        values = {k: v for k, v in best.items()
                  if k not in ("trial_id", "status", "score", "reason", "run_id")}
        print(f"Best trial {summary.best_trial_id}: {summary.objective} = "
              f"{summary.best_score:.4f}")
        print("  " + ", ".join(f"{k}={v}" for k, v in values.items()))
    print(f"\nMLflow: {tracking.tracking_uri()} (parent run {summary.parent_run_id})")
    print("Open the dashboard: `make ui`, then "
          f"http://127.0.0.1:5000/#/experiments/{exp_id}?workflowType=machine_learning")
