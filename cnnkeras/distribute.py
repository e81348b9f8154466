"""The ``tf.distribute`` strategy and numeric precision, chosen once at the entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import tensorflow as tf

STRATEGY_NAMES = ("auto", "default", "one_device", "mirrored", "multi_worker")


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


def create_strategy(name: str = "auto", *, cpu_devices: int = 1) -> tf.distribute.Strategy:
    """``auto``: MirroredStrategy over all GPUs when there are several (or over logical CPUs
    when ``cpu_devices`` > 1), else the default strategy. ``multi_worker`` reads ``TF_CONFIG``.
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(
            f"Unknown strategy {name!r}. Valid strategies: {', '.join(STRATEGY_NAMES)}.")
    split_cpu(cpu_devices)
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy multi_worker needs TF_CONFIG (cluster and task of this worker); "
                "see README 'Several machines'.")
        json.loads(os.environ["TF_CONFIG"])
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else cpus[0])
    if name == "mirrored" or (name == "auto" and (len(gpus) > 1 or len(cpus) > 1)):
        devices = gpus or cpus
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


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
