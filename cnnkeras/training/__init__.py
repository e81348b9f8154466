"""Training: one orchestrator and the two routes it fits by.

- ``run``: ``train_experiment``, the one orchestrator (data, model, run, records, save).
- ``loops``: the variable part, ``KerasFit`` (``model.fit``) or ``CustomLoop``.
- ``custom_loop``: the ``strategy.run`` step for multi-worker runs.
- ``compile``: config -> compiled model (optimizer, loss, metrics), the label check.
- ``checkpoints``: backups to resume from, and the lock that keeps them to one process.
"""

from cnnkeras.training.compile import (
    build_model,
    check_labels_fit_task,
    compile_model,
    make_optimizer,
    model_facts,
    schedule_callbacks,
    summary_text,
    task_metrics,
)
from cnnkeras.training.run import (
    TrainResult,
    load_data,
    log_model,
    model_input_shape,
    predict_labels,
    register,
    run_name,
    train_experiment,
)

__all__ = [
    "TrainResult", "build_model", "check_labels_fit_task", "compile_model", "load_data",
    "log_model", "make_optimizer", "model_facts", "model_input_shape", "predict_labels", "run_name",
    "register", "schedule_callbacks", "summary_text", "task_metrics", "train_experiment",
]
