"""Every MLflow call cnnkeras makes lives in this package; nothing else imports ``mlflow``.

- ``schema``: the vocabulary (tag names, run kinds, filter-string builders);
- ``store``: which tracking store, checked before MLflow opens it, and its experiments;
- ``runs``: runs created, reopened and ended by id, and what a run records;
- ``datasets``: the data a run trains on, as MLflow dataset inputs (the Dataset column);
- ``compare`` and ``dashboard``: reading runs back (tables and plots, ``mlflow ui``).
"""

from cnnkeras.tracking import datasets, schema
from cnnkeras.tracking.datasets import recorded_datasets
from cnnkeras.tracking.runs import (
                                    Run,
                                    active,
                                    artifact_dir,
                                    create_run,
                                    disable_autolog,
                                    end_run,
                                    find_runs,
                                    metric_history,
                                    reopen_run,
)
from cnnkeras.tracking.schema import PARENT_TAG
from cnnkeras.tracking.store import (
                                    SQLITE_HEADER,
                                    USE_ANOTHER_STORE,
                                    check_store,
                                    client,
                                    cnnkeras_experiments,
                                    end_orphaned_runs,
                                    experiment_id,
                                    tracking_uri,
)

__all__ = [
    "PARENT_TAG", "Run", "SQLITE_HEADER", "USE_ANOTHER_STORE", "active", "artifact_dir",
    "check_store", "client", "cnnkeras_experiments", "create_run", "datasets", "disable_autolog",
    "end_orphaned_runs", "end_run", "experiment_id", "find_runs", "metric_history",
    "recorded_datasets", "reopen_run", "schema", "tracking_uri",
]
