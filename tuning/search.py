"""`cnnkeras tune`: a KerasTuner search whose every trial is a nested MLflow run.

One parent run per search, one nested run per trial (and per execution when
``executions_per_trial > 1``). A trial whose geometry does not fit its input
is a FAILED trial with the reason, never a crash. Re-running an interrupted
search reloads the tuner's state and continues the same parent run; a trial
that was cut off is re-run into its own run, so no trial appears twice.
In KerasTuner's chief/worker mode the chief opens the parent run and every
worker logs its trials under it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Optional

import keras
import keras_tuner as kt
import tensorflow as tf
from keras_tuner.errors import FailedTrialError
from keras_tuner.src import config as kt_config
from keras_tuner.src.distribute import utils as dist_utils

from cnnkeras import distribute, tracking, training
from cnnkeras.analysis import GeometryError
from cnnkeras.config import ExperimentConfig, flatten
from tuning import report
from tuning.spaces import SPACES

SEARCH_TAG = "cnnkeras.search_dir"
TRIAL_TAG = "trial_id"
EXECUTION_TAG = "execution"
PARENT_WAIT_SECONDS = 120


class CnnHyperModel(kt.HyperModel):
    """Builds the model a space's config describes; a geometry misfit fails the trial."""

    def __init__(self, space, base: ExperimentConfig, input_shape, num_classes: int):
        super().__init__(name=base.tune.space)
        self.space, self.base = space, base
        self.input_shape, self.num_classes = tuple(input_shape), num_classes

    def build(self, hp):
        config = self.space(hp, self.base)
        try:
            return training.build_model(config, self.input_shape, self.num_classes)
        except GeometryError as err:
            raise FailedTrialError(f"rejected by geometry: {err}") from None


class SearchTracker:
    """Finds or creates the MLflow runs of one search: the parent, trials, executions."""

    def __init__(self, config: ExperimentConfig, exp_id: str, parent: tracking.Run):
        self.config, self.exp_id, self.parent = config, exp_id, parent
        self.prefix = training.run_name(config)

    def child(self, tags: dict, name: str, parent_id: str) -> tracking.Run:
        clauses = [f"tags.`{tracking.PARENT_TAG}` = '{parent_id}'"]
        clauses += [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
        found = tracking.find_runs(self.exp_id, " and ".join(clauses), max_results=1)
        if found:
            return tracking.reopen_run(found[0].info.run_id)
        return tracking.create_run(self.exp_id, name=name, parent=parent_id, tags={
            "architecture": self.config.model.architecture,
            "dataset": self.config.data.dataset, "cnnkeras.kind": "trial", **tags,
        })

    def trial_run(self, trial) -> tracking.Run:
        tags = {TRIAL_TAG: trial.trial_id}
        if os.environ.get("KERASTUNER_TUNER_ID"):
            tags["tuner_id"] = os.environ["KERASTUNER_TUNER_ID"]
        run = self.child({TRIAL_TAG: trial.trial_id}, f"{self.prefix} trial {trial.trial_id}",
                         self.parent.run_id)
        run.set_tags(tags)
        return run

    def execution_run(self, trial, execution: int, trial_run: tracking.Run) -> tracking.Run:
        return self.child({TRIAL_TAG: trial.trial_id, EXECUTION_TAG: execution},
                          f"{self.prefix} trial {trial.trial_id} execution {execution}",
                          trial_run.run_id)


def fit_in_run(fit, run: tracking.Run, *args, **kwargs):
    """Call ``fit`` with the run's metrics callback added to ``callbacks``."""
    kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [run.callback()]
    return fit(*args, **kwargs)


def log_histories(run: tracking.Run, histories, objective: str) -> None:
    """Final and best values of every metric, averaged over executions."""
    histories = [h.history if hasattr(h, "history") else h for h in histories]
    finals, bests = {}, {}
    for name in histories[0]:
        finals[f"final_{name}"] = sum(h[name][-1] for h in histories) / len(histories)
        pick = min if "loss" in name else max
        bests[f"best_{name}"] = sum(pick(h[name]) for h in histories) / len(histories)
    run.log_metrics({**finals, **bests, "epochs_run": len(histories[0][objective])})


class TrackedTuner:
    """Mixed into a KerasTuner tuner: MLflow runs around trials, and a safe oracle file."""

    tracker: SearchTracker

    def run_trial(self, trial, *args, **kwargs):
        run = self.tracker.trial_run(trial)
        self._trial_run, self._execution = run, 0
        with tracking.active(run):
            run.log_params({**flatten(self.hypermodel.space(trial.hyperparameters,
                                                            self.tracker.config)),
                            **trial.hyperparameters.values})
            try:
                histories = super().run_trial(trial, *args, **kwargs)
            except FailedTrialError as err:
                run.set_tags({"trial_status": "FAILED", "failure_reason": str(err)[:5000]})
                raise
            log_histories(run, histories, self.oracle.objective.name)
            run.set_tags({"trial_status": "COMPLETED"})
        return histories

    def _build_and_fit_model(self, trial, *args, **kwargs):
        self._execution += 1
        fit = super()._build_and_fit_model
        if self.executions_per_trial == 1:
            return fit_in_run(fit, self._trial_run, trial, *args, **kwargs)
        run = self.tracker.execution_run(trial, self._execution, self._trial_run)
        with tracking.active(run):
            return fit_in_run(fit, run, trial, *args, **kwargs)

    def save(self):
        super().save()
        report.backup_oracle(Path(self.project_dir))


TUNER_CLASSES = {
    name: type(f"Tracked{base.__name__}", (TrackedTuner, base), {})
    for name, base in (("random", kt.RandomSearch), ("bayesian", kt.BayesianOptimization),
                       ("hyperband", kt.Hyperband), ("grid", kt.GridSearch))
}


def make_tuner(config: ExperimentConfig, hypermodel, strategy) -> kt.Tuner:
    tune = config.tune
    common = dict(
        hypermodel=hypermodel, objective=tune.objective, directory=tune.directory,
        project_name=config.name, overwrite=tune.overwrite, seed=config.runtime.seed,
        executions_per_trial=tune.executions_per_trial,
        max_consecutive_failed_trials=10_000,  # geometry rejections are expected, not fatal
        distribution_strategy=strategy if strategy.num_replicas_in_sync > 1 else None,
    )
    if tune.tuner == "hyperband":
        return TUNER_CLASSES["hyperband"](max_epochs=tune.hyperband_max_epochs, factor=3,
                                          **common)
    return TUNER_CLASSES[tune.tuner](max_trials=tune.max_trials, **common)


def parent_run(config: ExperimentConfig, exp_id: str, search_dir: str) -> tracking.Run:
    """The search's parent run: reopened when this search ran before, else created.

    A worker in chief/worker mode waits for the chief to create it.
    """
    query = f"tags.`{SEARCH_TAG}` = '{search_dir}'"
    worker = dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()
    deadline = time.monotonic() + (PARENT_WAIT_SECONDS if worker else 0)
    while True:
        found = tracking.find_runs(exp_id, query, max_results=1)
        if found and (worker or not config.tune.overwrite):
            run = tracking.Run(found[0].info.run_id)
            return run if worker else tracking.reopen_run(run.run_id)
        if not worker:
            break
        if time.monotonic() > deadline:
            raise ValueError(f"No search run for {search_dir} appeared: is the chief running?")
        time.sleep(1)
    return tracking.create_run(exp_id, name=f"{training.run_name(config)} search", tags={
        SEARCH_TAG: search_dir, "architecture": config.model.architecture,
        "dataset": config.data.dataset, "cnnkeras.kind": "search", "tuner": config.tune.tuner,
    })


@dataclasses.dataclass(frozen=True)
class SearchResult:
    parent_run_id: str
    experiment_id: str
    summary: Optional[report.Summary]


def run_search(config: ExperimentConfig, strategy: Optional[tf.distribute.Strategy] = None,
               *, verbose: Optional[int] = None) -> SearchResult:
    """Run (or resume) the search ``config`` describes; returns the parent run and summary."""
    strategy = strategy or tf.distribute.get_strategy()
    space = SPACES.get(config.tune.space)
    kt_config.DEBUG = False  # a rejected trial is reported in one line, not a traceback
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    datasets = training.load_data(config, distribute.global_batch_size(config.train.batch_size,
                                                                      strategy))
    exp_id = tracking.experiment_id(config.mlflow_experiment)
    project = Path(config.tune.directory).resolve() / config.name
    is_worker = dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()
    if config.tune.overwrite and not is_worker:
        shutil.rmtree(project, ignore_errors=True)
    report.restore_oracle(project)
    parent = parent_run(config, exp_id, str(project))
    hypermodel = CnnHyperModel(space, config, datasets.input_shape, datasets.num_classes)
    tuner = make_tuner(dataclasses.replace(config, tune=dataclasses.replace(
        config.tune, overwrite=False, directory=str(project.parent))), hypermodel, strategy)
    tuner.tracker = SearchTracker(config, exp_id, parent)
    if is_worker:
        tuner.search(datasets.train, validation_data=datasets.validation,
                     epochs=config.train.epochs, verbose=config.runtime.verbose)
        return SearchResult(parent.run_id, exp_id, None)
    with tracking.active(parent):
        parent.log_params({**flatten(config), **{f"data.size.{k}": v
                                                 for k, v in datasets.sizes.items()}})
        parent.log_dict(json.loads(json.dumps(flatten(config), default=str)), "config.json")
        tuner.search(datasets.train, validation_data=datasets.validation,
                     epochs=config.train.epochs,
                     verbose=config.runtime.verbose if verbose is None else verbose)
        summary = report.summarize(tuner.oracle, exp_id, parent, config)
    report.print_summary(summary, exp_id)
    return SearchResult(parent.run_id, exp_id, summary)
