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
import warnings
from pathlib import Path
from typing import Optional

import keras
import keras_tuner as kt
import tensorflow as tf
from keras_tuner.errors import FailedTrialError
from keras_tuner.src import config as kt_config

from cnnkeras import distribute, tracking, training
from cnnkeras.analysis import GeometryError
from cnnkeras.config import ExperimentConfig, ModelConfig, flatten
from tuning import distributed, report
from tuning.spaces import SPACES, architecture_of

SEARCH_TAG = "cnnkeras.search_dir"
TRIAL_TAG = "trial_id"
EXECUTION_TAG = "execution"
CONTINUES_TAG = "continues_trial"  # Hyperband: the trial whose weights this one trains on
PARENT_WAIT_SECONDS = 120


class CnnHyperModel(kt.HyperModel):
    """Builds the model a space's config describes; a geometry misfit fails the trial."""

    declaring = False  # True while KerasTuner only collects the space's hyperparameters

    def __init__(self, space, base: ExperimentConfig, input_shape, num_classes: int):
        super().__init__(name=base.tune.space)
        self.space, self.base = space, base
        self.input_shape, self.num_classes = tuple(input_shape), num_classes

    def build(self, hp):
        config = self.space(hp, self.base)
        if self.declaring:
            return None
        try:
            return training.build_model(config, self.input_shape, self.num_classes)
        except GeometryError as err:
            raise FailedTrialError(f"rejected by geometry: {err}") from None


class SearchTracker:
    """Finds or creates the MLflow runs of one search: the parent, trials, executions."""

    def __init__(self, config: ExperimentConfig, exp_id: str, parent: tracking.Run,
                 train_size: int):
        self.config, self.exp_id, self.parent = config, exp_id, parent
        self.prefix = training.run_name(config)
        self.train_size = train_size  # examples per epoch, for images per second

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
        """The trial's run: created on its first attempt, reopened when it is re-run."""
        tags = {TRIAL_TAG: trial.trial_id, "trial_status": "RUNNING"}
        if distributed.role():
            tags["tuner_id"] = os.environ[distributed.TUNER_ID]
        values = trial.hyperparameters.values
        if "tuner/trial_id" in values:
            tags[CONTINUES_TAG] = values["tuner/trial_id"]
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


def trial_config(space, trial, base: ExperimentConfig) -> ExperimentConfig:
    """The config a trial trains: its space's, with Hyperband's epoch budget when it sets one."""
    config = space(trial.hyperparameters, base)
    epochs = trial.hyperparameters.values.get("tuner/epochs")
    if epochs:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       epochs=int(epochs)))
    return config


def failure_reason(err: Exception) -> str:
    """What a FAILED trial's run shows: the message, with the error type unless it is ours."""
    text = str(err) if isinstance(err, FailedTrialError) else f"{type(err).__name__}: {err}"
    return text[:5000]


def log_speed(run: tracking.Run, histories, train_size: int, seconds: float) -> None:
    """Wall time of the trial and training images per second over all its epochs."""
    epochs = sum(len((h.history if hasattr(h, "history") else h)["loss"]) for h in histories)
    run.log_metrics({"train_seconds": seconds,
                     "images_per_second": train_size * epochs / max(seconds, 1e-9)})


class TrackedTuner:
    """Mixed into a KerasTuner tuner: MLflow runs around trials, and a safe oracle file.

    Under Hyperband a trial trains from ``tuner/initial_epoch`` to ``tuner/epochs``
    (continuing the weights of trial ``tuner/trial_id``); its per-epoch metrics
    are logged at those absolute epochs, so curves of successive rounds line up.
    """

    tracker: SearchTracker

    def run_trial(self, trial, *args, **kwargs):
        run = self.tracker.trial_run(trial)
        self._trial_run, self._execution = run, 0
        with tracking.active(run):
            strategy = self.distribution_strategy or tf.distribute.get_strategy()
            run.log_params({**flatten(trial_config(self.hypermodel.space, trial,
                                                   self.tracker.config)),
                            **trial.hyperparameters.values,
                            "replicas": strategy.num_replicas_in_sync})
            started = time.perf_counter()
            try:
                histories = super().run_trial(trial, *args, **kwargs)
            except Exception as err:
                run.set_tags({"trial_status": "FAILED", "failure_reason": failure_reason(err)})
                raise
            except BaseException:  # Ctrl-C, SIGTERM: the run ends KILLED, re-run on resume
                run.set_tags({"trial_status": "KILLED"})
                raise
            log_histories(run, histories, self.oracle.objective.name)
            log_speed(run, histories, self.tracker.train_size, time.perf_counter() - started)
            run.set_tags({"trial_status": "COMPLETED"})
        return histories

    def _populate_initial_space(self):
        """Collect the space without building a model: its defaults may not fit the input."""
        self.hypermodel.declaring = True
        try:
            super()._populate_initial_space()
        finally:
            self.hypermodel.declaring = False

    def _try_build(self, hp):
        model = super()._try_build(hp)
        self._trial_run.log_params(training.model_facts(model))
        return model

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        report.backup_oracle(Path(self.project_dir))

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


def bayesian_initial_points(max_trials: int) -> int:
    """Random trials before the Gaussian process takes over: a third of the budget.

    KerasTuner's default, three per hyperparameter (39 for the lecture space),
    would leave a budget of a dozen or so trials purely random.
    """
    return max(2, max_trials // 3)


def make_tuner(config: ExperimentConfig, hypermodel, strategy) -> kt.Tuner:
    """The configured tuner; ``strategy`` is passed on when it spans several replicas."""
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
    if tune.tuner == "bayesian":
        common["num_initial_points"] = bayesian_initial_points(tune.max_trials)
    return TUNER_CLASSES[tune.tuner](max_trials=tune.max_trials, **common)


def parent_run(config: ExperimentConfig, exp_id: str, search_dir: str) -> tracking.Run:
    """The search's parent run: reopened when this search ran before, else created.

    A worker in chief/worker mode waits for the chief to create (or reopen) it.
    """
    query = f"tags.`{SEARCH_TAG}` = '{search_dir}'"
    worker = distributed.role() == "worker"
    if worker:
        query += " and attributes.status = 'RUNNING'"
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


def quiet_kerastuner() -> None:
    kt_config.DEBUG = False  # a rejected trial is reported in one line, not a traceback
    # Hyperband continues a trial from its weights file, which holds no optimizer state yet.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")


def log_search_config(parent: tracking.Run, config: ExperimentConfig, strategy, sizes) -> None:
    """The resolved config (params and ``config.json``), replicas and split sizes."""
    parent.log_params({**flatten(config), "replicas": strategy.num_replicas_in_sync,
                       **{f"data.size.{k}": v for k, v in sizes.items()}})
    parent.log_dict(json.loads(json.dumps(flatten(config), default=str)), "config.json")


@dataclasses.dataclass(frozen=True)
class SearchResult:
    parent_run_id: str
    experiment_id: str
    summary: Optional[report.Summary]


def run_search(config: ExperimentConfig, strategy: Optional[tf.distribute.Strategy] = None,
               *, verbose: Optional[int] = None) -> SearchResult:
    """Run (or resume) the search ``config`` describes; returns the parent run and summary.

    In chief/worker mode (``KERASTUNER_*`` set) the chief serves the oracle and
    writes the summary, and a worker runs trials and returns no summary.
    """
    strategy = strategy or tf.distribute.get_strategy()
    space = SPACES.get(config.tune.space)
    architecture = architecture_of(space, config)
    if architecture != config.model.architecture:  # e.g. --set tune.space=resnet18
        config = dataclasses.replace(config, model=ModelConfig(architecture))
    quiet_kerastuner()
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    if config.tune.tuner == "hyperband":
        print(f"Hyperband ignores max_trials: its budget is "
              f"tune.hyperband_max_epochs={config.tune.hyperband_max_epochs} (factor 3).")
    datasets = training.load_data(config, distribute.global_batch_size(config.train.batch_size,
                                                                      strategy))
    exp_id = tracking.experiment_id(config.mlflow_experiment)
    project = Path(config.tune.directory).resolve() / config.name
    role = distributed.role()
    if role != "worker":
        if config.tune.overwrite:
            shutil.rmtree(project, ignore_errors=True)
        report.restore_oracle(project)
    parent = parent_run(config, exp_id, str(project))
    hypermodel = CnnHyperModel(space, config, datasets.input_shape, datasets.num_classes)
    tuner = make_tuner(dataclasses.replace(config, tune=dataclasses.replace(
        config.tune, overwrite=False, directory=str(project.parent))), hypermodel, strategy)
    tuner.tracker = SearchTracker(config, exp_id, parent, datasets.sizes["train"])
    fit_args = dict(x=datasets.train, validation_data=datasets.validation,
                    epochs=config.train.epochs, shuffle=False,  # the pipeline shuffles
                    verbose=config.runtime.verbose if verbose is None else verbose)
    if role == "worker":
        tuner.search(**fit_args)
        print(f"Worker {tuner.tuner_id} done; its trials are under MLflow run {parent.run_id}.")
        return SearchResult(parent.run_id, exp_id, None)
    with tracking.active(parent):
        log_search_config(parent, config, strategy, datasets.sizes)
        if role == "chief":
            distributed.serve(tuner, verbose=fit_args["verbose"])
        else:
            tuner.search(**fit_args)
        summary = report.summarize(tuner.oracle, exp_id, parent, config)
    report.print_summary(summary, exp_id)
    return SearchResult(parent.run_id, exp_id, summary)
