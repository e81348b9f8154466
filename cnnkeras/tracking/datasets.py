"""Datasets as MLflow dataset inputs: what the runs table's Dataset column shows.

A run records each split it uses as one dataset input, tagged with its split as
MLflow's context tag (``train``, ``validation``, ``test``). The dataset is
described, not copied: its name is the dataset spec, its digest a hash of the
split's profile (``cnnkeras.data.DatasetFacts.split_digest``), its source the
local folder (MLflow's ``local`` source, a path) or the code that loads it
(MLflow's ``code`` source: ``sklearn.datasets.load_digits``, ``tfds:mnist/3.0.1``),
its schema the image and label tensors and its profile the examples per split.
The run's ``DATASET_DIGEST_TAG`` names the source digest it trains on now, so a
resumed run whose data changed can tell its current inputs from its earlier ones.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

import numpy as np
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.schema import TensorDatasetSchema
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag
from mlflow.types.schema import Schema, TensorSpec

from cnnkeras.tracking import store
from cnnkeras.tracking.schema import (
    CODE_SOURCE_TAG,
    DATASET_CONTEXT_TAG,
    DATASET_DIGEST_TAG,
    SPLITS,
)


class ImageDataset(Dataset):
    """One split of an image dataset, described by its ``DatasetFacts`` (no examples held)."""

    def __init__(self, facts, split: str):
        self.facts, self.split = facts, split
        super().__init__(source=source_of(facts), name=facts.name,
                         digest=facts.split_digest(split))

    def _compute_digest(self) -> str:
        return self.facts.split_digest(self.split)

    @property
    def profile(self) -> dict:
        return self.facts.profile(self.split)

    @property
    def schema(self) -> TensorDatasetSchema:
        """Batches of float32 images in [0, 255] and int64 labels, as the model gets them."""
        image = TensorSpec(np.dtype("float32"), (-1, *self.facts.shape), "image")
        label = TensorSpec(np.dtype("int64"), (-1, *self.facts.label_shape), "label")
        return TensorDatasetSchema(features=Schema([image]), targets=Schema([label]))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "schema": json.dumps(self.schema.to_dict()),
                "profile": json.dumps(self.profile)}


def source_of(facts) -> DatasetSource:
    """A local folder's path as MLflow's local source, else the loading code as a code source."""
    if facts.local:
        return LocalArtifactDatasetSource(facts.source)
    return CodeDatasetSource(tags={CODE_SOURCE_TAG: facts.source})


def dataset_inputs(facts, splits: Sequence[str] = SPLITS) -> list[DatasetInput]:
    """One input per split of ``splits`` that ``facts`` has, its split as the context tag."""
    return [DatasetInput(DatasetEntity(**ImageDataset(facts, split).to_dict()),
                         tags=[InputTag(DATASET_CONTEXT_TAG, split)])
            for split in splits if split in facts.sizes]


def log_datasets(client: MlflowClient, run_id: str, facts,
                 splits: Sequence[str] = SPLITS) -> None:
    """Record ``facts``' ``splits`` as the run's dataset inputs (again is a no-op)."""
    if facts is None:
        return
    client.log_inputs(run_id, datasets=dataset_inputs(facts, splits))
    client.set_tag(run_id, DATASET_DIGEST_TAG, facts.digest)


def context(dataset_input: DatasetInput) -> Optional[str]:
    """The split a recorded input is (its ``mlflow.data.context`` tag)."""
    return next((tag.value for tag in dataset_input.tags if tag.key == DATASET_CONTEXT_TAG), None)


def source_digest(dataset: DatasetEntity) -> Optional[str]:
    """The digest of the whole source a recorded split comes from (in its profile)."""
    return json.loads(dataset.profile or "{}").get("source_digest")


def current_inputs(run, splits: Sequence[str] = SPLITS) -> list[DatasetInput]:
    """The run's inputs of ``splits`` from the source digest it trains on now."""
    current = run.data.tags.get(DATASET_DIGEST_TAG)
    return [found for found in run.inputs.dataset_inputs
            if context(found) in splits and source_digest(found.dataset) == current]


def inputs_to_copy(client: MlflowClient, run_id: str, splits: Sequence[str] = SPLITS
                   ) -> tuple[list[DatasetInput], Optional[str]]:
    """``run_id``'s current dataset inputs of ``splits``, as another run logs them, and the
    source digest they come from (that run's ``DATASET_DIGEST_TAG``).

    A search's trials train on the search's data: they carry its parent's inputs.
    """
    run = client.get_run(run_id)
    return ([DatasetInput(found.dataset, tags=found.tags) for found in current_inputs(run, splits)],
            run.data.tags.get(DATASET_DIGEST_TAG))


def recorded_datasets(run_id: str) -> dict:
    """``{split: {name, digest, source, source_type, profile}}`` of a run's current inputs.

    ``source`` is the path of a local source, the loading code of a code source.
    """
    found = {}
    for dataset_input in current_inputs(store.client().get_run(run_id)):
        dataset = dataset_input.dataset
        source = json.loads(dataset.source)
        found[context(dataset_input)] = {
            "name": dataset.name, "digest": dataset.digest, "source_type": dataset.source_type,
            "source": source.get("uri") or source.get("tags", {}).get(CODE_SOURCE_TAG),
            "profile": json.loads(dataset.profile or "{}")}
    return found
