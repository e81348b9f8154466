"""The tf.nn variant experiments: registered, tunable through their spaces, trainable end to end."""

from __future__ import annotations

import keras_tuner as kt
import pytest
from mlflow.tracking import MlflowClient

import experiments
from cnnkeras import training
from cnnkeras.cli import main
from tuning.spaces import SPACES

NAMES = {  # experiment -> (architecture, dataset spec, model input shape)
    "conv1d_digits": ("conv1d_sequence", "digits", (28, 28, 1)),
    "conv3d_moving_digits": ("conv3d_volume", "moving:digits", (8, 28, 28, 1)),
    "atrous_segmentation_digits": ("atrous_segmenter", "segmentation:digits", (28, 28, 1)),
    "transpose_segmentation_digits": ("transpose_decoder", "segmentation:digits", (28, 28, 1)),
    "separable_digits": ("separable_cnn", "digits", (28, 28, 1)),
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_experiment_names_its_architecture_data_and_a_space_that_builds(name):
    architecture, dataset, input_shape = NAMES[name]
    config = experiments.get(name)
    assert (config.model.architecture, config.data.dataset) == (architecture, dataset)
    hp = kt.HyperParameters()
    trial = SPACES.get(config.tune.space)(hp, config)
    assert trial.model.architecture == architecture
    assert {"filters_1", "kernel_size_1"} <= set(hp.values) or "filters" in hp.values
    classes = 11 if dataset.startswith("segmentation") else 10
    model = training.build_model(trial, input_shape, classes)
    assert model.count_params() > 0 and model.loss == "sparse_categorical_crossentropy"


def test_segmentation_experiment_trains_and_logs_mean_iou(tracking_store, capsys):
    code = main(["train", "--experiment", "atrous_segmentation_digits", "--epochs", "1",
                 "--set", "data.limit=16", "--set", "data.image_size=(12,12)",
                 "--set", "runtime.verbose=0"])
    assert code == 0
    client = MlflowClient(tracking_store)
    experiment = client.get_experiment_by_name("atrous_segmentation_digits")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["data.dataset"] == "segmentation:digits"
    assert {"loss", "mean_iou", "val_mean_iou", "test_mean_iou"} <= set(run.data.metrics)
    assert 0 <= run.data.metrics["test_mean_iou"] <= 1
    assert "mean_iou" in capsys.readouterr().out
