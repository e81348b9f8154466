"""The MLflow vocabulary of cnnkeras: tag names, run kinds and the queries built on them.

Every tag a run carries and every ``filter_string`` cnnkeras sends is spelled
here once, so the code that records runs and the code that finds them again
(``compare``, the dashboard, search resume, reports) cannot drift apart.
"""

from __future__ import annotations

# Experiments cnnkeras creates are tagged as model development: MLflow's UI then opens
# them in its machine-learning view (runs table, charts), not its GenAI view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag: the UI folds children in

# Who is running a run, so a run whose process died can be ended KILLED.
PID_TAG = "cnnkeras.pid"
HOST_TAG = "cnnkeras.host"
ENDED_BY_TAG = "cnnkeras.ended_by"
ERROR_TAG = "cnnkeras.error"

# What a run is.
KIND_TAG = "cnnkeras.kind"
TRAIN, TRIAL, SEARCH, TRANSFER, COMPARE = "train", "trial", "search", "transfer", "compare"
TRAINED_KINDS = (TRAIN, TRIAL, TRANSFER)  # runs that trained a model and have its metrics

# Training.
ROUTE_TAG = "cnnkeras.route"  # "fit" or "custom_loop"
RESUMED_TAG = "cnnkeras.resumed_from_epoch"
PHASE_TAG = "cnnkeras.phase"  # transfer: "head" or "fine_tune"
ARCHITECTURE_TAG = "architecture"
DATASET_TAG = "dataset"

# Datasets (MLflow dataset inputs, the runs table's Dataset column).
DATASET_CONTEXT_TAG = "mlflow.data.context"  # MLflow's input tag: the split a dataset is
SPLITS = ("train", "validation", "test")  # its values, as cnnkeras names the splits
FIT_SPLITS = ("train", "validation")  # what a trial or a transfer phase trains on
DATASET_DIGEST_TAG = "cnnkeras.dataset_digest"  # the source digest a run trains on now
CODE_SOURCE_TAG = "mlflow.source.name"  # a code source's tag: the loader the data comes from

# Searches and their trials.
SEARCH_DIR_TAG = "cnnkeras.search_dir"
REGISTERED_TAG = "cnnkeras.registered_model"  # the search's winner: models:/NAME/VERSION
TUNER_TAG = "tuner"
TRIAL_ID_TAG = "trial_id"
TRIAL_STATUS_TAG = "trial_status"
FAILURE_REASON_TAG = "failure_reason"


def _quoted(value) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def tag_is(key: str, value) -> str:
    """``tags.`key` = 'value'``: the filter clause matching one tag value."""
    return f"tags.`{key}` = {_quoted(value)}"


def all_of(*clauses: str) -> str:
    """Clauses joined by ``and`` (empty clauses dropped)."""
    return " and ".join(clause for clause in clauses if clause)


def kind_is(kind: str) -> str:
    """Runs of one kind (``TRAIN``, ``TRIAL``, ``SEARCH``, ...)."""
    return tag_is(KIND_TAG, kind)


def children_of(parent_run_id: str, **tags) -> str:
    """The nested runs of ``parent_run_id``, optionally with these tag values too."""
    return all_of(tag_is(PARENT_TAG, parent_run_id),
                  *(tag_is(key, value) for key, value in tags.items()))


def search_in(search_dir) -> str:
    """The parent run of the search whose project folder is ``search_dir``."""
    return tag_is(SEARCH_DIR_TAG, search_dir)


RUNNING = "attributes.status = 'RUNNING'"
FINISHED = "attributes.status = 'FINISHED'"
