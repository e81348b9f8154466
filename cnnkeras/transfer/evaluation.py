"""The held-out test split: accuracy, per-class precision and recall, and what went wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from cnnkeras.inspection import viz  # selects matplotlib's Agg backend before pyplot loads

plt = viz.plt

GRID_IMAGES = 16


@dataclass(frozen=True)
class Evaluation:
    class_names: tuple
    truths: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray
    matrix: np.ndarray
    wrong_images: np.ndarray  # up to GRID_IMAGES misclassified images, uint8
    wrong_indices: np.ndarray  # their positions in the test split

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.matrix) / max(self.matrix.sum(), 1))

    @property
    def loss(self) -> float:
        picked = self.probabilities[np.arange(len(self.truths)), self.truths]
        return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))) if len(picked) else 0.0

    @property
    def precision(self) -> np.ndarray:
        """Per class: right among those predicted as it (0 where none was)."""
        predicted = self.matrix.sum(axis=0)
        return np.divide(np.diag(self.matrix), predicted, out=np.zeros(len(predicted)),
                         where=predicted > 0)

    @property
    def recall(self) -> np.ndarray:
        """Per class: found among those that truly are it (0 where there were none)."""
        actual = self.matrix.sum(axis=1)
        return np.divide(np.diag(self.matrix), actual, out=np.zeros(len(actual)),
                         where=actual > 0)

    def metrics(self) -> dict:
        """Flat ``test_*`` metrics for tracking; class names made metric-safe."""
        values = {"test_accuracy": self.accuracy, "test_loss": self.loss}
        for name, p, r in zip(self.class_names, self.precision, self.recall, strict=True):
            key = re.sub(r"[^0-9A-Za-z_.-]", "_", name)
            values[f"test_precision_{key}"] = float(p)
            values[f"test_recall_{key}"] = float(r)
        return values

    def report(self) -> str:
        """A per-class table, in the manner of scikit-learn's classification report."""
        width = max(len(n) for n in self.class_names)
        support = self.matrix.sum(axis=1)
        lines = [f"{'class':<{width}}  precision  recall  support"]
        for name, p, r, n in zip(self.class_names, self.precision, self.recall, support,
                                     strict=True):
            lines.append(f"{name:<{width}}  {p:9.3f}  {r:6.3f}  {n:7d}")
        lines.append(f"\naccuracy {self.accuracy:.4f} on {int(self.matrix.sum())} test images")
        return "\n".join(lines)


def evaluate(predict: Callable, dataset: tf.data.Dataset, class_names: Sequence[str]):
    """Predict a batched (pixels in [0, 255], label) split once; keep what the report needs.

    ``predict``: images -> class probabilities (``model.forward`` of the classifier).
    """
    truths, probabilities, wrong, wrong_at = [], [], [], []
    seen = 0
    for images, labels in dataset:
        probs = np.asarray(predict(images), dtype=np.float64)
        labels = labels.numpy()
        missed = np.flatnonzero(probs.argmax(axis=-1) != labels)
        for index in missed[: GRID_IMAGES - len(wrong)]:
            wrong.append(np.clip(np.round(np.asarray(images[index])), 0, 255)
                         .astype(np.uint8))
            wrong_at.append(seen + index)
        truths.append(labels)
        probabilities.append(probs)
        seen += len(labels)
    truths = np.concatenate(truths).astype(np.int64)
    probabilities = np.concatenate(probabilities)
    predictions = probabilities.argmax(axis=-1)
    shape = (0, *dataset.element_spec[0].shape[1:])
    return Evaluation(
        class_names=tuple(class_names), truths=truths, predictions=predictions,
        probabilities=probabilities,
        matrix=viz.confusion_matrix(truths, predictions, len(class_names)),
        wrong_images=np.stack(wrong) if wrong else np.zeros(shape, np.uint8),
        wrong_indices=np.asarray(wrong_at, dtype=np.int64))


def plot_misclassified(evaluation: Evaluation, path) -> Path:
    """A grid of misclassified test images titled with predicted (probability) and true label."""
    count = len(evaluation.wrong_images)
    columns = min(4, max(count, 1))
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows), squeeze=False)
    names = evaluation.class_names
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, index in zip(axes.ravel(), evaluation.wrong_images,
                                  evaluation.wrong_indices, strict=False):
        predicted = evaluation.predictions[index]
        axis.imshow(image)
        axis.set_title(f"pred {names[predicted]} "
                       f"({evaluation.probabilities[index, predicted]:.2f})\n"
                       f"true {names[evaluation.truths[index]]}", fontsize=8)
    if not count:
        axes[0, 0].text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
    wrong = int((evaluation.predictions != evaluation.truths).sum())
    fig.suptitle(f"Misclassified test images ({wrong} of {len(evaluation.truths)}, "
                 f"first {count} shown)", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
