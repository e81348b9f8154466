"""The ``tf.distribute`` strategy and numeric precision, chosen once at the entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import keras
import tensorflow as tf

from cnnkeras.config import STRATEGIES


def split_cpu(count: int) -> None:
    """Present the CPU as ``count`` logical devices (MirroredStrategy on one CPU).

    Must run before TensorFlow initialises its devices, i.e. before any op.
    """
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as err:
        raise ValueError(
            f"runtime.cpu_devices={count} must be set before TensorFlow starts running ops: {err}"
        ) from None


def read_tf_config(text: Optional[str] = None) -> dict:
    """``TF_CONFIG`` (or ``text``) parsed and checked: ``{}`` when unset.

    A cluster needs ``cluster`` (task type -> list of "host:port") and ``task``
    (``type`` and ``index`` of this process within the cluster).
    """
    text = os.environ.get("TF_CONFIG", "") if text is None else text
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}). Received: {text!r}") from None
    cluster, task = parsed.get("cluster"), parsed.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(
            'TF_CONFIG needs "cluster" and "task", e.g. {"cluster": {"worker": '
            '["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}. '
            f"Received: {text!r}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ValueError(
            f"TF_CONFIG task {task!r} is not in its cluster {cluster!r}: task.type must be one "
            "of the cluster's task types and task.index an index into its address list.")
    return parsed


def cluster_size(tf_config: dict) -> int:
    """Processes taking part in training (chief and workers) in a parsed TF_CONFIG."""
    cluster = tf_config.get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def create_strategy(name: str = "auto", *, cpu_devices: int = 1) -> tf.distribute.Strategy:
    """``auto``: MultiWorkerMirroredStrategy when ``TF_CONFIG`` names a cluster of several
    processes, MirroredStrategy over all GPUs when there are several (or over logical CPUs
    when ``cpu_devices`` > 1), else the default strategy. ``multi_worker`` reads ``TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {name!r}. Valid strategies: {', '.join(STRATEGIES)}.")
    if name == "multi_worker" and "TF_CONFIG" not in os.environ:
        raise ValueError(
            "strategy multi_worker needs TF_CONFIG (cluster and task of this worker); "
            "see README 'Several machines', or rehearse locally with "
            "`make train-multiworker WORKERS=2`.")
    tf_config = read_tf_config()
    if name == "multi_worker" or (name == "auto" and cluster_size(tf_config) > 1):
        return tf.distribute.MultiWorkerMirroredStrategy()
    split_cpu(cpu_devices)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else cpus[0])
    if name == "mirrored" or (name == "auto" and (len(gpus) > 1 or len(cpus) > 1)):
        devices = gpus or cpus
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True for MultiWorkerMirroredStrategy, which trains through ``training.custom_loop``."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def task_of(strategy: tf.distribute.Strategy) -> tuple:
    """``(task_type, task_id)`` of this process; ``(None, None)`` outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, None
    return resolver.task_type, resolver.task_id


def chief_task(task_type: Optional[str], task_id: Optional[int], task_types) -> bool:
    """Whether a task logs and saves: the ``chief``, else worker 0, else a process on its own."""
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in task_types


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    task_type, task_id = task_of(strategy)
    if task_type is None:
        return True
    return chief_task(task_type, task_id, strategy.cluster_resolver.cluster_spec().as_dict())


def worker_name(strategy: tf.distribute.Strategy) -> str:
    """``chief``, ``worker_1``, ...: this process's name in files it writes."""
    task_type, task_id = task_of(strategy)
    return "chief" if is_chief(strategy) else f"{task_type}_{task_id}"


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """The batch the input pipeline makes: per-replica size times replicas in sync."""
    return int(per_replica) * int(strategy.num_replicas_in_sync)


def cpu_supports_bfloat16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX512_BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """``auto`` -> mixed_float16 on GPUs, mixed_bfloat16 on bfloat16 CPUs, else float32."""
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"


def set_precision(precision: str) -> str:
    """Set Keras' global dtype policy; returns the policy name in force."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
