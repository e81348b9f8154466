"""A search's MLflow side: its parent run, one nested run per trial and per execution.

The parent run is found again by the search's folder (``schema.SEARCH_DIR_TAG``), so
re-running the same command continues it; a trial's run is found again by its
trial id, so a re-run trial logs into the run it started. The parent records the
search's data as MLflow dataset inputs (train, validation, test); each trial's run
carries the parent's train and validation inputs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

from cnnkeras import data, tracking, training
from cnnkeras.config import ExperimentConfig, flatten, to_json
from cnnkeras.tracking import datasets, schema
from tuning import distributed

EXECUTION_TAG = "execution"
CONTINUES_TAG = "continues_trial"  # Hyperband: the trial whose weights this one trains on
PARENT_WAIT_SECONDS = 120


class SearchTracker:
    """Finds or creates the MLflow runs of one search: the parent, trials, executions."""

    def __init__(self, config: ExperimentConfig, exp_id: str, parent: tracking.Run,
                 train_size: int):
        self.config, self.exp_id, self.parent = config, exp_id, parent
        self.prefix = training.run_name(config)
        self.train_size = train_size  # examples per epoch, for images per second
        self.inputs: tuple = ([], None)  # the parent's train and validation inputs, digest

    def find(self, tags: dict, parent_id: str):
        """The MLflow run under ``parent_id`` with ``tags``, or None."""
        found = tracking.find_runs(self.exp_id, schema.children_of(parent_id, **tags),
                                   max_results=1)
        return found[0] if found else None

    def fit_inputs(self) -> tuple:
        """The search's train and validation inputs and their source digest, as its trials
        carry them: read from the parent once it has recorded them (before any trial)."""
        if not self.inputs[0]:
            self.inputs = datasets.inputs_to_copy(self.parent.client, self.parent.run_id,
                                                  schema.FIT_SPLITS)
        return self.inputs

    def child(self, tags: dict, name: str, parent_id: str, more_tags: Optional[dict] = None
              ) -> tracking.Run:
        """A trial's (or execution's) run, found by ``tags`` or created with them, tagged
        ``more_tags`` too and carrying the datasets it trains on: the search's."""
        inputs, digest = self.fit_inputs()
        more_tags = {**(more_tags or {}), **({schema.DATASET_DIGEST_TAG: digest} if inputs else {})}
        found = self.find(tags, parent_id)
        if found:
            run = tracking.reopen_run(found.info.run_id, more_tags)
        else:
            run = tracking.create_run(self.exp_id, name=name, parent=parent_id, tags={
                schema.ARCHITECTURE_TAG: self.config.model.architecture,
                schema.DATASET_TAG: self.config.data.dataset, schema.KIND_TAG: schema.TRIAL,
                **tags, **more_tags})
        run.log_inputs(inputs)
        return run

    def trial_run(self, trial) -> tracking.Run:
        """The trial's run: created on its first attempt, reopened when it is re-run."""
        tags = {schema.TRIAL_ID_TAG: trial.trial_id, schema.TRIAL_STATUS_TAG: "RUNNING"}
        if distributed.role():
            tags["tuner_id"] = os.environ[distributed.TUNER_ID]
        values = trial.hyperparameters.values
        if "tuner/trial_id" in values:
            tags[CONTINUES_TAG] = values["tuner/trial_id"]
        return self.child({schema.TRIAL_ID_TAG: trial.trial_id},
                          f"{self.prefix} trial {trial.trial_id}", self.parent.run_id, tags)

    def recorded_params(self, trial_id: str) -> Optional[dict]:
        """The params of trial ``trial_id``'s run under this search, if it has one."""
        found = self.find({schema.TRIAL_ID_TAG: trial_id}, self.parent.run_id)
        return dict(found.data.params) if found else None

    def execution_run(self, trial, execution: int, trial_run: tracking.Run) -> tracking.Run:
        return self.child({schema.TRIAL_ID_TAG: trial.trial_id, EXECUTION_TAG: execution},
                          f"{self.prefix} trial {trial.trial_id} execution {execution}",
                          trial_run.run_id)


class TrialRecorder:
    """One trial's MLflow side: its run, the model's facts, one nested run per execution."""

    def __init__(self, tracker: SearchTracker, trial, run: tracking.Run, executions: int):
        self.tracker, self.trial, self.run = tracker, trial, run
        self.executions, self.execution = executions, 0
        self.model = None  # the model of the last execution that fitted

    def fit(self, model, *args, **kwargs):
        self.execution += 1
        self.model = model
        if self.execution == 1:
            self.run.log_params(training.model_facts(model))
        if self.executions == 1:
            return fit_in_run(model.fit, self.run, *args, **kwargs)
        run = self.tracker.execution_run(self.trial, self.execution, self.run)
        with tracking.active(run):
            return fit_in_run(model.fit, run, *args, **kwargs)


def fit_in_run(fit, run: tracking.Run, *args, **kwargs):
    """Call ``fit`` with the run's metrics callback added to ``callbacks``."""
    kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [run.callback()]
    return fit(*args, **kwargs)


def history_metrics(histories, objective: str) -> dict:
    """Final and best values of every metric, averaged over executions, and the epochs run."""
    histories = [h.history if hasattr(h, "history") else h for h in histories]
    finals, bests = {}, {}
    for name in histories[0]:
        finals[f"final_{name}"] = sum(h[name][-1] for h in histories) / len(histories)
        if name == "learning_rate":  # a schedule's, not a score
            continue
        pick = min if "loss" in name else max
        bests[f"best_{name}"] = sum(pick(h[name]) for h in histories) / len(histories)
    return {**finals, **bests, "epochs_run": len(histories[0][objective])}


def speed_metrics(histories, train_size: int, seconds: float) -> dict:
    """Wall time of the trial and training images per second over all its epochs."""
    epochs = sum(len((h.history if hasattr(h, "history") else h)["loss"]) for h in histories)
    return {"train_seconds": seconds,
            "images_per_second": train_size * epochs / max(seconds, 1e-9)}


def search_name(config: ExperimentConfig) -> str:
    """``<arch> <dataset> search (<tuner>[, space S], <start time>)``: searches told apart."""
    space = "" if config.tune.space == config.model.architecture else f", space {config.tune.space}"
    return (f"{training.run_name(config)} search ({config.tune.tuner}{space}, "
            f"{time.strftime('%Y-%m-%d %H:%M')})")


def parent_run(config: ExperimentConfig, exp_id: str, search_dir: str) -> tracking.Run:
    """The search's parent run: reopened when this search ran before, else created.

    A worker in chief/worker mode waits for the chief to create (or reopen) it.
    """
    worker = distributed.role() == "worker"
    query = schema.all_of(schema.search_in(search_dir), schema.RUNNING if worker else "")
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
    return tracking.create_run(exp_id, name=search_name(config), tags={
        schema.SEARCH_DIR_TAG: search_dir, schema.ARCHITECTURE_TAG: config.model.architecture,
        schema.DATASET_TAG: config.data.dataset, schema.KIND_TAG: schema.SEARCH,
        schema.TUNER_TAG: config.tune.tuner, "space": config.tune.space,
    })


def log_search_config(parent: tracking.Run, config: ExperimentConfig, strategy, sizes) -> None:
    """The resolved config (params and ``config.json``), replicas and split sizes.

    The budget may grow when a search is resumed: it is the tag ``tune.max_trials``
    (MLflow params cannot change), and ``config.json`` is rewritten each time.
    """
    params = {k: v for k, v in flatten(config).items() if k != "tune.max_trials"}
    parent.log_datasets(search_facts(config, sizes))  # the trials copy them from here
    parent.log_params({**params, "replicas": strategy.num_replicas_in_sync,
                       **{f"data.size.{k}": v for k, v in sizes.items()}})
    parent.set_tags({"tune.max_trials": config.tune.max_trials})
    parent.log_dict(json.loads(to_json(config)), "config.json")  # as a training run's


def search_facts(config: ExperimentConfig, sizes: dict) -> data.DatasetFacts:
    """The search's data as ``data.load`` describes it (only its split sizes are at hand)."""
    plan = data.SplitPlan(config.data.validation_fraction, config.data.test_fraction,
                          config.data.seed, config.data.limit)
    return data.describe(config.data.dataset, shape=training.model_input_shape(config),
                         sizes=sizes, plan=plan, data_dir=config.data.data_dir)
