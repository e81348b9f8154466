"""`cnnkeras tune`: a KerasTuner search whose every trial is a nested MLflow run.

One parent run per search (named by architecture, dataset, tuner and start
time), one nested run per trial (and per execution when
``executions_per_trial > 1``). No trial is spent on a geometry that does not fit
the input: the oracle (``tuning.oracles``) checks every candidate first. Each
search owns its folder (``tuning.project``): re-running the same command
reloads its state and continues the same parent run; a trial that was cut off is
re-run into its own run, so no trial appears twice; another tuner or space is
another search. In KerasTuner's chief/worker mode the chief opens the parent run
and every worker logs its trials under it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import warnings
from pathlib import Path
from typing import Optional

import keras
import keras_tuner as kt
import tensorflow as tf
from keras_tuner.errors import FailedTrialError

from cnnkeras import distribute, tracking, training
from cnnkeras.config import ExperimentConfig, to_json
from cnnkeras.geometry import GeometryError
from cnnkeras.tracking import schema
from tuning import checkpoints, distributed, keeper, oracles, project, report, winner
from tuning.spaces import SPACES, search_config
from tuning.tracker import (
    SearchTracker,
    TrialRecorder,
    history_metrics,
    log_search_config,
    parent_run,
    speed_metrics,
)


class CnnHyperModel(kt.HyperModel):
    """Builds the model a space's config describes, and fits it into the trial's MLflow run.

    Outside a trial (KerasTuner collecting the space's hyperparameters at their
    defaults, which may not fit the input) ``build`` declares them and builds nothing.
    """

    def __init__(self, space, base: ExperimentConfig, input_shape, num_classes: int, *,
                 verbose: int = 1):
        super().__init__(name=base.tune.space)
        self.space, self.base = space, base
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.verbose = verbose
        self.trial: Optional[TrialRecorder] = None  # set by the tuner while a trial runs

    def build(self, hp):
        config = self.space(hp, self.base)
        if self.trial is None:
            return None
        try:
            return training.build_model(config, self.input_shape, self.num_classes)
        except GeometryError as err:  # the oracle checks first; a builder may know more
            raise FailedTrialError(f"rejected by geometry: {err}") from None

    def fit(self, hp, model, *args, **kwargs):
        train = trial_config(self.space, self.trial.trial, self.base).train
        kwargs["callbacks"] = [*checkpoints.in_memory(kwargs.get("callbacks", [])),
                               *training.schedule_callbacks(train.lr_schedule,
                                                            train.learning_rate, train.epochs)]
        return self.trial.fit(model, *args, verbose=self.verbose, **kwargs)


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


class TrackedTuner(kt.Tuner):
    """A KerasTuner tuner with MLflow runs around trials, its own console lines and a
    safe oracle file, on public hooks only (``run_trial``, ``on_trial_*``, ``save``).

    Each trial is named by its trial id everywhere: the console, the run name, the
    summary, ``trials.csv`` and the ``trial_<id>`` folder (KerasTuner's own display,
    which counts differently, is off). Under Hyperband a trial trains from
    ``tuner/initial_epoch`` to ``tuner/epochs`` (continuing the weights of trial
    ``tuner/trial_id``); its per-epoch metrics are logged at those absolute epochs.
    """

    tracker: SearchTracker
    best: keeper.BestModel  # the best trial's model, for the winner

    def run_trial(self, trial, *args, **kwargs):
        run = self.tracker.trial_run(trial)
        self.failure = None
        recorder = TrialRecorder(self.tracker, trial, run, self.executions_per_trial)
        self.hypermodel.trial = recorder
        try:
            with tracking.active(run):
                return self.tracked_trial(run, trial, *args, **kwargs)
        finally:
            self.hypermodel.trial = None
            # with several executions the checkpoint holds the best of all, not the last one's
            if recorder.model is not None and self.executions_per_trial == 1:
                self.best.trained(trial.trial_id, recorder.model)

    def tracked_trial(self, run: tracking.Run, trial, *args, **kwargs):
        strategy = self.distribution_strategy or tf.distribute.get_strategy()
        # Params are what sets trials apart (the hyperparameters, under the names the space
        # gives them) and what comparing needs (replicas here, the model's facts once built);
        # the config the trial resolves to is its config.json, the search's on the parent.
        run.log_params({**trial.hyperparameters.values,
                        "replicas": strategy.num_replicas_in_sync})
        run.log_dict(json.loads(to_json(trial_config(self.hypermodel.space, trial,
                                                      self.tracker.config))), "config.json")
        started = time.perf_counter()
        try:
            histories = super().run_trial(trial, *args, **kwargs)
        except Exception as err:
            self.failure = failure_reason(err)
            run.set_tags({schema.TRIAL_STATUS_TAG: "FAILED",
                          schema.FAILURE_REASON_TAG: self.failure})
            raise
        except BaseException:  # Ctrl-C, SIGTERM: the run ends KILLED, re-run on resume
            run.set_tags({schema.TRIAL_STATUS_TAG: "KILLED"})
            raise
        run.log_metrics({  # and the status, in one store transaction
            **history_metrics(histories, self.oracle.objective.name),
            **speed_metrics(histories, self.tracker.train_size, time.perf_counter() - started),
        }, tags={schema.TRIAL_STATUS_TAG: "COMPLETED"})
        return histories

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        keeper.settle_garbage()
        report.backup_oracle(Path(self.project_dir))
        if self.hypermodel.verbose:
            values = ", ".join(f"{k}={v}" for k, v in trial.hyperparameters.values.items())
            print(f"\nTrial {trial.trial_id}: {values}", flush=True)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.best.ended(trial.trial_id, self.oracle)
        if trial.status == "COMPLETED":
            score = self.oracle.get_trial(trial.trial_id).score
            print(f"Trial {trial.trial_id} COMPLETED: {self.oracle.objective.name} "
                  f"{score:.4f}", flush=True)
        else:
            reason = self.failure or "see its MLflow run"
            print(f"Trial {trial.trial_id} {trial.status}: {reason}", flush=True)

    def save(self):
        super().save()
        report.backup_oracle(Path(self.project_dir))


class TrackedHyperband(TrackedTuner, kt.Hyperband):
    """Hyperband's trials (continuing an earlier trial's weights) with our own oracle.

    ``kt.Hyperband.__init__`` only makes its oracle; ours is passed in instead.
    """

    def __init__(self, oracle, hypermodel, **kwargs):
        kt.Tuner.__init__(self, oracle, hypermodel, **kwargs)


def bayesian_initial_points(max_trials: int) -> int:
    """Random trials before the Gaussian process takes over: a third of the budget. KerasTuner's
    default, three per hyperparameter (39 for the lecture space), leaves a small budget random."""
    return max(2, max_trials // 3)


def make_oracle(config: ExperimentConfig, check: oracles.GeometryCheck) -> kt.Oracle:
    """The configured tuner's oracle, checking every candidate's geometry first."""
    tune = config.tune
    common = dict(objective=tune.objective, seed=config.runtime.seed, check=check,
                  max_consecutive_failed_trials=10_000)  # a failed trial never ends a search
    if tune.tuner == "hyperband":
        return oracles.HyperbandOracle(max_epochs=tune.hyperband_max_epochs, factor=3, **common)
    if tune.tuner == "bayesian":
        common["num_initial_points"] = bayesian_initial_points(tune.max_trials)
    return oracles.ORACLES[tune.tuner](max_trials=tune.max_trials, **common)


def make_tuner(config: ExperimentConfig, hypermodel: CnnHyperModel, strategy,
               folder: Path) -> kt.Tuner:
    """The search's tuner in ``folder``, its saved state reloaded; ``strategy`` is passed on
    when it spans several replicas."""
    check = oracles.GeometryCheck(hypermodel.space, hypermodel.base, hypermodel.input_shape,
                                  hypermodel.num_classes)
    tuner_class = TrackedHyperband if config.tune.tuner == "hyperband" else TrackedTuner
    try:
        return tuner_class(
            oracle=make_oracle(config, check), hypermodel=hypermodel,
            directory=str(folder.parent), project_name=folder.name, overwrite=False,
            executions_per_trial=config.tune.executions_per_trial,
            distribution_strategy=strategy if strategy.num_replicas_in_sync > 1 else None)
    except (KeyError, RuntimeError, json.JSONDecodeError) as err:  # KerasTuner's reload
        cause = err.__cause__ or err  # KerasTuner wraps a missing key in a long RuntimeError
        raise ValueError(f"The tuner state in {folder} does not fit this search "
                         f"({type(cause).__name__}: {cause}): {project.afresh(folder)}."
                         ) from None


def early_stopping(config: ExperimentConfig) -> list:
    """A trial stops once the objective has not improved for ``train.early_stopping_patience``
    epochs; KerasTuner keeps its best epoch's weights and score either way."""
    patience = config.train.early_stopping_patience
    return [keras.callbacks.EarlyStopping(monitor=config.tune.objective, patience=patience)
            ] if patience else []


def quiet_kerastuner() -> None:
    # Hyperband continues a trial from its weights file, which holds no optimizer state yet.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")


@dataclasses.dataclass(frozen=True)
class SearchResult:
    parent_run_id: str
    experiment_id: str
    summary: Optional[report.Summary]
    winner: Optional[winner.Winner] = None


def run_search(config: ExperimentConfig, strategy: Optional[tf.distribute.Strategy] = None,
               *, verbose: Optional[int] = None) -> SearchResult:
    """Run (or resume) the search ``config`` describes; returns the parent run and summary.

    In chief/worker mode (``KERASTUNER_*`` set) the chief serves the oracle and
    writes the summary, and a worker runs trials and returns no summary.
    """
    space = SPACES.get(config.tune.space)
    config = search_config(space, config)
    folder = project.project_dir(config)
    with contextlib.ExitStack() as stack:
        if distributed.role() != "worker":  # the chief holds the folder for its workers
            stack.enter_context(project.hold(folder))
            if config.tune.overwrite:
                project.clear(folder)
        return search_in(folder, config, space, strategy or tf.distribute.get_strategy(),
                         config.runtime.verbose if verbose is None else verbose)


def search_in(folder: Path, config: ExperimentConfig, space, strategy, verbose: int
              ) -> SearchResult:
    quiet_kerastuner()
    keeper.freeze_imports()
    keras.utils.set_random_seed(config.runtime.seed)
    tracking.disable_autolog()
    if config.tune.tuner == "hyperband":
        print(f"Hyperband ignores max_trials: its budget is "
              f"tune.hyperband_max_epochs={config.tune.hyperband_max_epochs} (factor 3).")
    datasets = training.load_data(config, distribute.global_batch_size(config.train.batch_size,
                                                                      strategy))
    exp_id = tracking.experiment_id(config.mlflow_experiment)
    role = distributed.role()
    parent = parent_run(config, exp_id, str(folder))
    hypermodel = CnnHyperModel(space, config, datasets.input_shape, datasets.num_classes,
                               verbose=verbose)
    tracker = SearchTracker(config, exp_id, parent, datasets.sizes["train"])
    fit_args = dict(x=datasets.train, validation_data=datasets.validation,
                    epochs=config.train.epochs, shuffle=False,  # the pipeline shuffles
                    callbacks=early_stopping(config))
    if role == "worker":
        tuner = make_tuner(config, hypermodel, strategy, folder)
        tuner.tracker, tuner.best = tracker, keeper.BestModel(keep=False)
        tuner.search(**fit_args)
        print(f"Worker {tuner.tuner_id} done; its trials are under MLflow run {parent.run_id}.")
        return SearchResult(parent.run_id, exp_id, None)
    with tracking.active(parent):
        project.check_state(folder, tracker.recorded_params)
        tuner = make_tuner(config, hypermodel, strategy, folder)
        tuner.tracker, tuner.best = tracker, keeper.BestModel()
        tuner.oracle.verbose = 0  # KerasTuner's display counts trials its own way
        log_search_config(parent, config, strategy, datasets.sizes)
        if role == "chief":
            distributed.serve(tuner)
        else:
            tuner.search(**fit_args)
        summary = report.summarize(tuner.oracle, exp_id, parent, config)
        best = winner.deliver(tuner, summary, config, space, datasets, parent, strategy)
    report.print_summary(summary, exp_id)
    winner.print_winner(best)
    return SearchResult(parent.run_id, exp_id, summary, best)
