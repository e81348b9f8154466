"""The search's answer: its best trial's model, tested, logged and registered.

The winner is not retrained. When this process trained the best trial, it is that
trial's model itself, left at its best epoch's weights by the search objective
(``tuning.checkpoints``). Otherwise (a resumed search, trials run by workers, several
executions per trial, a model over a million parameters, a GPU) it is rebuilt from
KerasTuner's best checkpoint: the trial's config builds the model and
``checkpoint.weights.h5`` (the same weights, which KerasTuner keeps for every trial)
fills it. Either way the model is exactly the one the search scored, at no extra
training cost; the model at hand also skips building it again and tracing its
evaluation (~0.4 s of `make tune`). It is evaluated once on the test split, which no
trial saw; the test metrics go on the parent run and on the winner's trial run. The
model is logged as the parent run's MLflow model and registered under the experiment's
name, a new version per search, tagged with the search run, the trial and the test
accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cnnkeras import tracking, training
from cnnkeras.config import ExperimentConfig
from cnnkeras.tracking import models as tracked_models
from cnnkeras.tracking import schema

CHECKPOINT = "checkpoint.weights.h5"  # where KerasTuner keeps a trial's best epoch


@dataclass(frozen=True)
class Winner:
    trial_id: str
    test_metrics: dict
    model_uri: str  # the parent run's logged model, models:/<id>
    registered: str  # models:/NAME/VERSION


def checkpoint(tuner, trial_id: str) -> Path:
    path = Path(tuner.get_trial_dir(trial_id)) / CHECKPOINT
    if not path.is_file():
        raise ValueError(f"The best trial {trial_id} has no checkpoint at {path}: "
                         "its folder was removed. Run the search again with "
                         "--set tune.overwrite=true to train it again.")
    return path


def rebuild(tuner, trial_id: str, config: ExperimentConfig, space, datasets, strategy):
    """The trial's model with the weights of its best epoch, compiled as it trained."""
    from tuning.search import trial_config  # search imports this module

    trained = tuner.best.get(trial_id)  # the model itself, when this process kept it
    if trained is not None:
        return trained
    trial = tuner.oracle.get_trial(trial_id)
    with strategy.scope():
        model = training.build_model(trial_config(space, trial, config), datasets.input_shape,
                                     datasets.num_classes)
    model.load_weights(checkpoint(tuner, trial_id))
    return model


def deliver(tuner, summary, config: ExperimentConfig, space, datasets, parent: tracking.Run,
            strategy) -> Optional[Winner]:
    """Test, log and register the best trial's model; None when no trial completed."""
    if summary is None or summary.best_trial_id is None:
        return None
    model = rebuild(tuner, summary.best_trial_id, config, space, datasets, strategy)
    values = model.evaluate(datasets.test, verbose=0, return_dict=True)
    test_metrics = {f"test_{name}": float(value) for name, value in values.items()}
    parent.log_metrics(test_metrics)
    if summary.best_run_id:
        tracking.Run(summary.best_run_id).log_metrics(test_metrics)
    model_uri = training.log_model(parent, model, datasets)
    registered = tracked_models.register(model_uri, config.mlflow_experiment,
                                         run_id=parent.run_id, tags={
        "search_run_id": parent.run_id, "trial_id": summary.best_trial_id,
        "trial_run_id": summary.best_run_id or "",
        **{k: f"{v:.4f}" for k, v in test_metrics.items()}})
    parent.set_tags({schema.REGISTERED_TAG: registered})
    return Winner(summary.best_trial_id, test_metrics, model_uri, registered)


def print_winner(winner: Optional[Winner]) -> None:
    if winner is None:
        print("No trial completed, so the search has no model to deliver.")
        return
    scores = ", ".join(f"{k} {v:.4f}" for k, v in winner.test_metrics.items())
    print(f"Best model (trial {winner.trial_id}), on the test split: {scores}\n"
          f"Registered: {winner.registered} "
          f"(load it: mlflow.pyfunc.load_model(\"{winner.registered}\"), "
          f"or cnnkeras predict {winner.registered} IMAGE...)")
