"""Pictures as PNG files (matplotlib, Agg backend): curves, confusion matrices, filters, maps."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curves(history: Mapping[str, Sequence[float]], path) -> Path:
    """Loss and each metric per epoch, training against validation, one panel each."""
    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    return _save(fig, path)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts[i, j] of examples of true class i predicted as class j."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path,
                          title: str = "Confusion matrix (test)") -> Path:
    """The matrix as a heat map with counts in the cells."""
    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        axis.text(j, i, str(count), ha="center", va="center", fontsize=8,
                  color="white" if count > threshold else "black")
    return _save(fig, path)


def plot_parallel_coordinates(table, objective: str, path, *, exclude=()) -> "Path":
    """Each row a line across its hyperparameters, coloured by ``score`` (the objective).

    Categorical columns are drawn at evenly spaced levels labelled with their values.
    """
    columns = [c for c in table.columns if c not in exclude]
    scores = table["score"].astype(float).to_numpy()
    fig, axis = plt.subplots(figsize=(max(6, 1.3 * (len(columns) + 1)), 4.5))
    positions, labels = [], []
    for column in columns:
        values = table[column]
        levels = sorted(values.astype(str).unique(), key=_natural)
        index = values.astype(str).map({v: i for i, v in enumerate(levels)}).to_numpy(float)
        positions.append(index / max(len(levels) - 1, 1))
        labels.append((column, levels))
    positions.append((scores - scores.min()) / max(np.ptp(scores), 1e-12))
    grid = np.stack(positions, axis=1)
    colours = plt.cm.viridis((scores - scores.min()) / max(np.ptp(scores), 1e-12))
    for row, colour in zip(grid, colours, strict=True):
        axis.plot(range(grid.shape[1]), row, color=colour, alpha=0.8)
    for x, (_, levels) in enumerate(labels):
        axis.axvline(x, color="grey", lw=0.5)
        for level_index, level in enumerate(levels):
            axis.text(x, level_index / max(len(levels) - 1, 1), level, fontsize=7,
                      ha="right", va="center")
    axis.axvline(len(labels), color="grey", lw=0.5)
    axis.set_xticks(range(grid.shape[1]), [c for c, _ in labels] + [objective], rotation=30)
    axis.set_yticks([])
    axis.set_title(f"Trials: hyperparameters against {objective} "
                   f"({scores.min():.3f} - {scores.max():.3f})")
    return _save(fig, path)


def _natural(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
