"""4. Tuning overhead: a KerasTuner search with MLflow logging vs its trials' bare ``fit`` calls.

One repetition runs ``tuning.search.run_search`` (by default the `make tune`
search itself: lecture_digits with its tuner, trials and epochs; fresh project).
Around each trial the same process fits that trial's model from scratch with a
plain ``model.fit`` on the same datasets, with no tuner and no MLflow: once just
before the trial and once right after it, for as many epochs as the trial trains;
each bare fit is timed on its own clock and taken off the search's. The bare time
of a trial is the mean of the two (A B A: a drift of the shared host's speed, or
whatever the fit just before leaves warm, weighs on both sides alike). With only
the fit after each trial, the trials' fits came out 1.07-1.19x their bare fits on a
Zen 5; with fits on both sides, the fit before a trial was 4-7% faster than the
trial and the one after it 0-4% slower. With early stopping on, the epochs a trial
will train are not known before it, so only the fit after it is made. The bare
fits reseed Keras' random generators, so later trials start from other initial
weights than in `make tune`: the search's cost is measured here, not its result.
The ratio is the search's wall time over the summed bare fits: what KerasTuner
bookkeeping, checkpoints, model building, MLflow logging and delivering the
winner (test, log, register) add. fit_ratio compares the trials' own ``fit`` calls
(with their callbacks) with the bare fits, telling the fits' share of it from the
work around them. The MLflow store is created before the clock
starts (a one-time set-up of a new store, reported as store_seconds); loading
the data is inside it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import keras

from benchmarks import measure


def search_config(args, folder: Path):
    import experiments
    from cnnkeras.config import apply_overrides

    overrides = [f"{key}={value}" for key, value in (
        ("tune.tuner", args.tuner), ("tune.max_trials", args.trials),
        ("train.epochs", args.epochs)) if value is not None]
    overrides += ["runtime.verbose=0", "tune.overwrite=true",
                 f"tune.directory={folder / 'tuner'}", f"runtime.output_dir={folder / 'runs'}"]
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    if args.limit:
        overrides.append(f"data.limit={args.limit}")
    return apply_overrides(experiments.get(args.experiment), overrides)


def epochs_trained(config) -> dict:
    """trial id -> the epochs its MLflow run says it trained (``epochs_run``)."""
    from cnnkeras import tracking
    from cnnkeras.tracking import schema

    exp_id = tracking.experiment_id(config.mlflow_experiment)
    return {run.data.tags[schema.TRIAL_ID_TAG]: int(run.data.metrics["epochs_run"])
            for run in tracking.find_runs(exp_id, schema.kind_is(schema.TRIAL))
            if "epochs_run" in run.data.metrics}


def config_of(config, epochs: int):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))


def bare_fit(config, datasets) -> float:
    """Wall seconds of a plain ``fit`` of ``config``'s model, built outside the clock."""
    from cnnkeras import training

    keras.utils.set_random_seed(config.runtime.seed)
    model = training.build_model(config, datasets.input_shape, datasets.num_classes)
    started = time.perf_counter()
    model.fit(datasets.train, validation_data=datasets.validation, verbose=0,
              epochs=config.train.epochs, shuffle=False)
    seconds = time.perf_counter() - started
    keras.backend.clear_session()
    return seconds


@contextlib.contextmanager
def paired_bare_fits(config, datasets) -> Iterator[dict]:
    """While active, every trial of a search is preceded and followed by its bare fit.

    Yields ``{"fits", "before", "after", "trial_fits": [seconds...], "aside": seconds}``:
    per completed trial the mean of its two bare fits, the one before, the one after;
    each trial's ``fit`` call (inside the search); and everything the bare fits took
    (building, fitting, clearing), for the search's clock.
    """
    from tuning import search, tracker

    space = search.SPACES.get(config.tune.space)
    paired = {"fits": [], "before": [], "after": [], "trial_fits": [], "aside": 0.0}
    before = {}  # trial id -> its bare fit made just before it
    original_begin, original = search.TrackedTuner.on_trial_begin, search.TrackedTuner.on_trial_end
    original_fit = tracker.TrialRecorder.fit

    def trial_fit(recorder, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original_fit(recorder, *args, **kwargs)
        finally:
            paired["trial_fits"].append(time.perf_counter() - started)

    def on_trial_begin(tuner, trial):
        original_begin(tuner, trial)
        if config.train.early_stopping_patience:  # how many epochs it trains is not known yet
            return
        started = time.perf_counter()
        planned = search.trial_config(space, trial, config)  # with Hyperband's epochs
        epochs = planned.train.epochs - int(trial.hyperparameters.values.get(
            "tuner/initial_epoch", 0))
        before[trial.trial_id] = bare_fit(config_of(planned, epochs), datasets)
        paired["aside"] += time.perf_counter() - started

    def on_trial_end(tuner, trial):
        original(tuner, trial)
        if trial.status != "COMPLETED":
            before.pop(trial.trial_id, None)
            return
        started = time.perf_counter()
        # as many epochs as the trial trained (early stopping may have cut it short)
        epochs = epochs_trained(config)[trial.trial_id]
        after = bare_fit(config_of(search.trial_config(space, trial, config), epochs), datasets)
        first = before.pop(trial.trial_id, after)
        paired["before"].append(first)
        paired["after"].append(after)
        paired["fits"].append((first + after) / 2)
        paired["aside"] += time.perf_counter() - started

    search.TrackedTuner.on_trial_begin = on_trial_begin
    search.TrackedTuner.on_trial_end = on_trial_end
    tracker.TrialRecorder.fit = trial_fit
    try:
        yield paired
    finally:
        search.TrackedTuner.on_trial_begin = original_begin
        search.TrackedTuner.on_trial_end = original
        tracker.TrialRecorder.fit = original_fit


def one_repetition(args, folder: Path) -> dict:
    from cnnkeras import tracking, training
    from tuning.search import run_search

    config = search_config(args, folder)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    started = time.perf_counter()
    tracking.experiment_id(config.mlflow_experiment)  # the store, as a user's already is
    store_seconds = time.perf_counter() - started
    started = time.perf_counter()
    datasets = training.load_data(config, config.train.batch_size)  # the bare fits' copy
    load_seconds = time.perf_counter() - started
    with paired_bare_fits(config, datasets) as paired:
        started = time.perf_counter()
        run_search(config, verbose=0)
        search_seconds = time.perf_counter() - started - paired["aside"]
    fits, trial_fits = paired["fits"], paired["trial_fits"]
    return {"search_seconds": search_seconds, "fit_seconds": sum(fits), "trials": len(fits),
            "before_seconds": sum(paired["before"]), "after_seconds": sum(paired["after"]),
            "trial_fit_seconds": sum(trial_fits), "data_load_seconds": load_seconds,
            "store_seconds": store_seconds, "ratio": search_seconds / max(sum(fits), 1e-9),
            "fit_ratio": sum(trial_fits) / max(sum(fits), 1e-9)}


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m benchmarks.tuning_overhead",
                                    description=__doc__.splitlines()[0])
    parse.add_argument("--experiment", default="lecture_digits")
    parse.add_argument("--dataset", default=None, help="dataset spec replacing the experiment's")
    parse.add_argument("--tuner", default=None, help="default: the experiment's")
    parse.add_argument("--trials", type=int, default=None, help="default: the experiment's")
    parse.add_argument("--epochs", type=int, default=None, help="default: the experiment's")
    parse.add_argument("--limit", type=int, default=None, help="at most this many per split")
    measure.common_arguments(parse, repeats=3)
    return parse


def main(argv: Optional[Sequence[str]] = None) -> measure.Report:
    args = parser().parse_args(argv)
    report = measure.Report(
        "tuning_overhead", "4. Tuning overhead: KerasTuner + MLflow search vs bare fit calls",
        ["repetition", "trials", "search_seconds", "trial_fit_seconds", "bare_fit_seconds",
         "bare_before_seconds", "bare_after_seconds", "data_load_seconds", "store_seconds",
         "ratio", "fit_ratio"],
        settings={k: v for k, v in vars(args).items() if k != "output"})
    try:
        import tuning.search  # noqa: F401
    except ImportError as err:
        report.skip("all", f"tuning.search.run_search is not available ({err})")
        report.save(args.output)
        return report
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    ratios, fit_ratios = [], []
    try:
        for index in range(args.warmup + args.repeats):
            with tempfile.TemporaryDirectory(prefix="cnnkeras-bench-") as folder:
                result = one_repetition(args, Path(folder))
            if index < args.warmup:
                print(f"[tuning_overhead] warm-up: {result}", flush=True)
                continue
            ratios.append(result["ratio"])
            fit_ratios.append(result["fit_ratio"])
            report.add(repetition=index - args.warmup + 1, trials=result["trials"],
                       search_seconds=result["search_seconds"],
                       trial_fit_seconds=result["trial_fit_seconds"],
                       bare_fit_seconds=result["fit_seconds"],
                       bare_before_seconds=result["before_seconds"],
                       bare_after_seconds=result["after_seconds"],
                       data_load_seconds=result["data_load_seconds"],
                       store_seconds=result["store_seconds"], ratio=result["ratio"],
                       fit_ratio=result["fit_ratio"])
    finally:
        if previous_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_uri
    if ratios:
        report.add(repetition="median", ratio=statistics.median(ratios),
                   fit_ratio=statistics.median(fit_ratios))
    report.notes.append("The search's time includes loading the data once (data_load_seconds "
                        "shows what that costs), building every model and delivering the "
                        "winner; the bare fits don't. A new store's set-up (store_seconds) "
                        "is outside both.")
    report.notes.append("trial_fit_seconds: the trials' own fit calls inside the search "
                        "(with KerasTuner's and cnnkeras' callbacks); fit_ratio is their sum "
                        "over the bare fits'. search_seconds - trial_fit_seconds is what "
                        "happens around the fits: tuner, runs, building, the winner.")
    report.notes.append("bare_fit_seconds: per trial, the mean of its bare fit just before "
                        "it (bare_before_seconds) and just after it (bare_after_seconds); "
                        "ratio and fit_ratio are over that mean.")
    report.save(args.output)
    return report


if __name__ == "__main__":
    main()
