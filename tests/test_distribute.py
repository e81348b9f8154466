"""Strategy choice, TF_CONFIG, sharding of the input pipeline, and MirroredStrategy end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cnnkeras import data, distribute

CLUSTER = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'. Valid strategies: auto, "):
        distribute.create_strategy("tpu")


def test_multi_worker_without_tf_config_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distribute.create_strategy("multi_worker")


def test_default_strategy_and_its_global_batch(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = distribute.create_strategy("default")
    assert strategy.num_replicas_in_sync == 1
    assert distribute.global_batch_size(32, strategy) == 32
    assert distribute.is_chief(strategy) and distribute.worker_name(strategy) == "chief"
    assert not distribute.is_multi_worker(strategy)


def test_read_tf_config_parses_a_cluster():
    text = json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 1}})
    parsed = distribute.read_tf_config(text)
    assert parsed["task"] == {"type": "worker", "index": 1}
    assert distribute.cluster_size(parsed) == 2
    assert distribute.read_tf_config("") == {}
    assert distribute.cluster_size({}) == 0


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"cluster": CLUSTER}), 'needs "cluster" and "task"'),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}), "not in its"),
    (json.dumps({"cluster": CLUSTER, "task": {"type": "chief", "index": 0}}), "not in its"),
])
def test_read_tf_config_rejects_what_tensorflow_would_misread(text, message):
    with pytest.raises(ValueError, match=message):
        distribute.read_tf_config(text)


@pytest.mark.parametrize("task_type, task_id, types, chief", [
    (None, None, {}, True),                       # not in a cluster
    ("chief", 0, {"chief": 1, "worker": 2}, True),
    ("worker", 0, {"chief": 1, "worker": 2}, False),
    ("worker", 0, {"worker": 2}, True),            # no chief: worker 0 acts as one
    ("worker", 1, {"worker": 2}, False),
    ("evaluator", 0, {"worker": 2, "evaluator": 1}, False),
])
def test_chief_task(task_type, task_id, types, chief):
    assert distribute.chief_task(task_type, task_id, types) is chief


@pytest.mark.parametrize("gpus, bf16, expected", [
    (True, True, "mixed_float16"), (False, True, "mixed_bfloat16"), (False, False, "float32"),
])
def test_auto_precision_follows_the_hardware(monkeypatch, gpus, bf16, expected):
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["/gpu:0"] if gpus and kind == "GPU" else [])
    monkeypatch.setattr(distribute, "cpu_supports_bfloat16", lambda: bf16)
    assert distribute.resolve_precision("auto") == expected
    assert distribute.resolve_precision("float32") == "float32"


def sharding_policy(dataset):
    return dataset.options().experimental_distribute.auto_shard_policy


def test_pipelines_shard_by_data_for_in_memory_and_file_sources(tmp_path):
    """FILE sharding needs a file-reading source dataset; neither an in-memory array nor
    a decoded list of paths is one, so both must shard by DATA (each worker takes its
    share of every global batch)."""
    for label in ("cat", "dog"):  # synthetic images, for the file-backed source only
        (tmp_path / label).mkdir()
        for index in range(10):
            pixels = np.full((8, 8, 3), 10 * index + (label == "dog") * 100, np.uint8)
            tf.io.write_file(str(tmp_path / label / f"{index}.png"), tf.io.encode_png(pixels))
    plan = data.SplitPlan(0.2, 0.2, seed=0)
    for spec in ("digits", f"folder:{tmp_path}"):
        loaded = data.load(spec, image_size=(8, 8), channels=1, batch_size=4, plan=plan)
        for split in (loaded.train, loaded.validation, loaded.test):
            assert sharding_policy(split) == tf.data.experimental.AutoShardPolicy.DATA, spec


def test_mirrored_over_two_logical_cpus_trains_from_the_command_line(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "cnnkeras", "train", "lecture_cnn", "--dataset", "digits",
         "--epochs", "1", "--batch-size", "16", "--strategy", "mirrored",
         "--set", "runtime.cpu_devices=2", "--set", "data.limit=128",
         "--set", "runtime.verbose=0", "--set", f"runtime.output_dir={tmp_path / 'runs'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("cnnkeras-train")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["replicas"] == "2"
    assert run.data.params["global_batch_size"] == "32"
    assert run.data.params["runtime.strategy"] == "mirrored"
    assert run.data.tags["cnnkeras.route"] == "fit"  # model.fit, not the custom loop
