"""The tf.nn variant experiments train end to end (every experiment builds and has a space
that builds: test_registry.py)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from cnnkeras.cli import main


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
