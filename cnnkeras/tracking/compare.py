"""`cnnkeras compare`: the runs of cnnkeras experiments side by side.

Reads the tracking store through MLflow's client (never the database file),
ranks the runs that trained a model by a metric, and writes, then logs as
artifacts of a comparison run: the table of the best runs, accuracy against
parameters and against FLOPs with the Pareto front marked, the learning curves
of the top runs overlaid, and the parallel coordinates of the latest search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from cnnkeras import tracking
from cnnkeras.inspection import viz
from cnnkeras.tracking import dashboard, schema
from cnnkeras.tracking.dashboard import lower_is_better

COMPARISONS = "cnnkeras-comparisons"
COLUMNS = ("run_name", "experiment", "architecture", "dataset", "parameters",
           "flops_per_image", "images_per_second", "wall_seconds")


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per run, best first
    metric: str
    search_trials: Optional[pd.DataFrame]  # hyperparameters and score of the latest search


def pick_experiments(names: Sequence[str]) -> list:
    known = [e for e in tracking.cnnkeras_experiments() if e.name != COMPARISONS]
    if not known:
        raise ValueError(f"No cnnkeras experiments in {tracking.tracking_uri()}: "
                         "run `make tune` or `cnnkeras train` first.")
    if not names:
        return known
    by_name = {e.name: e for e in known}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"No experiment named {', '.join(map(repr, missing))} in "
                         f"{tracking.tracking_uri()}. Experiments: "
                         f"{', '.join(sorted(by_name))}.")
    return [by_name[n] for n in names]


def run_row(run, experiment_name: str, metric: str) -> dict:
    history = [value for _, value in tracking.metric_history(run.info.run_id, metric)]
    pick = min if lower_is_better(metric) else max
    params, tags = run.data.params, run.data.tags
    return {
        "run_id": run.info.run_id, "run_name": run.info.run_name,
        "experiment": experiment_name, "kind": tags.get(schema.KIND_TAG),
        "architecture": tags.get(schema.ARCHITECTURE_TAG), "dataset": tags.get(schema.DATASET_TAG),
        "parameters": pd.to_numeric(params.get("parameters"), errors="coerce"),
        "flops_per_image": pd.to_numeric(params.get("flops_per_image"), errors="coerce"),
        "images_per_second": run.data.metrics.get("images_per_second"),
        "wall_seconds": ((run.info.end_time - run.info.start_time) / 1000
                         if run.info.end_time else None),
        f"best_{metric}": pick(history), f"final_{metric}": history[-1],
        "params": dict(params),
    }


def load(names: Sequence[str] = (), metric: str = "val_accuracy") -> Comparison:
    """The finished runs of ``names`` (all cnnkeras experiments when empty) ranked by ``metric``."""
    experiments = pick_experiments(names)
    rows, seen_metrics = [], set()
    for experiment in experiments:
        for run in tracking.find_runs(experiment.experiment_id, schema.FINISHED,
                                      max_results=5000):
            if run.data.tags.get(schema.KIND_TAG) not in schema.TRAINED_KINDS:
                continue
            seen_metrics |= set(run.data.metrics)
            if metric in run.data.metrics:
                rows.append(run_row(run, experiment.name, metric))
    if not rows:
        raise ValueError(f"No finished run has metric {metric!r}. Metrics the runs have: "
                         f"{', '.join(sorted(seen_metrics)) or 'none'}.")
    table = pd.DataFrame(rows).sort_values(f"best_{metric}",
                                           ascending=lower_is_better(metric), kind="stable")
    return Comparison(table.reset_index(drop=True), metric, search_trials(experiments, metric))


def search_trials(experiments, metric: str) -> Optional[pd.DataFrame]:
    """The latest search's finished trials: hyperparameters (in the space's order) and
    score, the best epoch of ``metric``."""
    search = dashboard.latest_search(experiments)
    if not search or not search.trials:
        return None
    names = dashboard.hyperparameters(search)
    rows = []
    for run in search.trials:
        score = trial_score(run, metric)
        if score is not None:
            rows.append({**{name: run.data.params.get(name) for name in names}, "score": score})
    return pd.DataFrame(rows) if rows else None


def trial_score(run, metric: str) -> Optional[float]:
    """A trial's score as its tuner ranks it: ``metric`` at its best epoch, which the trial
    logs (averaged over executions) as ``best_<metric>``; else the best of its history."""
    logged = run.data.metrics.get(f"best_{metric}")
    if logged is not None:
        return logged
    history = [value for _, value in tracking.metric_history(run.info.run_id, metric)]
    return (min if lower_is_better(metric) else max)(history) if history else None


def best_table(comparison: Comparison, top: int) -> pd.DataFrame:
    columns = [*COLUMNS, f"best_{comparison.metric}", f"final_{comparison.metric}", "run_id"]
    return comparison.table.head(top)[columns]


def cell(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines)


def render(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return table.to_json(orient="records", indent=2)
    if fmt == "markdown":
        return markdown(table)
    raise ValueError(f"Unknown format {fmt!r}. Valid formats: markdown, csv, json.")


def write(comparison: Comparison, folder: Path, top: int) -> list[Path]:
    """The table (CSV and Markdown) and the plots, in ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    table, metric = best_table(comparison, top), comparison.metric
    files = [folder / "best_runs.csv", folder / "best_runs.md"]
    files[0].write_text(render(table, "csv"))
    files[1].write_text(render(table, "markdown") + "\n")
    for cost in ("parameters", "flops_per_image"):
        points = comparison.table.dropna(subset=[cost])
        if len(points):
            files.append(viz.plot_pareto(points, cost, f"best_{metric}",
                                         folder / f"{metric}_vs_{cost}.png",
                                         maximize=not lower_is_better(metric)))
    curves = {row.run_name: tracking.metric_history(row.run_id, metric)
              for row in comparison.table.head(min(top, 8)).itertuples()}
    files.append(viz.plot_metric_curves(curves, metric, folder / f"{metric}_curves.png"))
    if comparison.search_trials is not None and len(comparison.search_trials) >= 2:
        files.append(viz.plot_parallel_coordinates(
            comparison.search_trials, f"best_{metric}",
            folder / "latest_search_parallel_coordinates.png", exclude=("score",)))
    return files


def log(files: Sequence[Path], names: Sequence[str], metric: str) -> str:
    """A run in the comparisons experiment holding the files; returns its id."""
    run = tracking.create_run(tracking.experiment_id(COMPARISONS),
                              name=f"compare {', '.join(names) or 'all'} by {metric}",
                              tags={schema.KIND_TAG: schema.COMPARE, "metric": metric})
    with tracking.active(run):
        run.log_params({"experiments": ",".join(names) or "all", "metric": metric})
        for path in files:
            run.log_artifact(path, "plots" if path.suffix == ".png" else None)
    return run.run_id
