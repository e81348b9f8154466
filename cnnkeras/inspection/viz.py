"""Pictures as PNG files (matplotlib, Agg backend): curves, confusion matrices, filters, maps.

The hand-made line-filter demo is in ``cnnkeras.inspection.filter_demo``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_png(fig, path) -> Path:
    """Write ``fig`` to ``path`` (folders made) and close it."""
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
    return save_png(fig, path)


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
    return save_png(fig, path)


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
    return save_png(fig, path)


def _natural(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


# --- what a CNN learns: filters and feature maps ---------------------------------------------

UNTRAINED_NOTE = "untrained (random initial weights)"  # a model built fresh from a name


def first_conv(model) -> tuple:
    """``(path, layer)`` of the first layer with a convolution kernel (kh, kw, in, out),
    inside nested models too (``inception_v3/conv2d``)."""
    from cnnkeras.inspection.graph import walk_layers

    for path, layer in walk_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) in (3, 4) and hasattr(layer, "kernel_size"):
            return path, layer
    raise ValueError(f"{model.name!r} has no convolution layer whose filters could be drawn.")


def first_conv_layer(model):
    """The first layer with a 2D convolution kernel (kh, kw, in, out)."""
    return first_conv(model)[1]


def filter_images(layer, max_filters: Optional[int] = None) -> np.ndarray:
    """The layer's filters as images in [0, 1], (n, kh, kw, 3) for RGB input, else (n, kh, kw, 1).

    Every filter, or the first ``max_filters``. Each is scaled on its own from its
    minimum (0) to its maximum (1); a filter over more than 3 input maps is drawn
    as the mean over them.
    """
    kernel = layer.dense_kernel() if hasattr(layer, "dense_kernel") else layer.kernel
    kernel = np.asarray(kernel, dtype="float32")  # (kh, kw, in, out)
    if kernel.ndim != 4:
        raise ValueError(f"{layer.name!r} has no 2D convolution kernel to draw "
                         f"(kernel shape {kernel.shape}).")
    filters = kernel.transpose(3, 0, 1, 2)[:max_filters]
    if filters.shape[-1] != 3:
        filters = filters.mean(axis=-1, keepdims=True)
    low = filters.min(axis=(1, 2, 3), keepdims=True)
    span = filters.max(axis=(1, 2, 3), keepdims=True) - low
    return (filters - low) / np.where(span > 0, span, 1.0)


def _grid(count: int, columns: int):
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.2 * rows + 0.4),
                             squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    return fig, axes


def filter_figure(model, *, layer_name=None, untrained: bool = False):
    """Every filter of the first convolution layer (or ``layer_name``'s) in a grid whose
    rows hold a multiple of 4 (8 for 64 filters, 12 for AlexNet's 96); the title ends in
    ``UNTRAINED_NOTE`` when ``untrained``. Returns the matplotlib figure."""
    from cnnkeras.inspection.graph import find_layer

    path, layer = find_layer(model, layer_name) if layer_name else first_conv(model)
    images = filter_images(layer)
    columns = min(len(images), max(8, 4 * math.ceil(math.sqrt(len(images)) / 4)))
    fig, axes = _grid(len(images), columns=columns)
    for axis, image in zip(axes.flat, images, strict=False):
        axis.imshow(image if image.shape[-1] == 3 else image[..., 0], cmap="gray",
                    interpolation="nearest")
    kh, kw = images.shape[1:3]
    note = f", {UNTRAINED_NOTE}" if untrained else ""
    fig.suptitle(f"{model.name}: {path}, {len(images)} filters {kh}x{kw}{note}")
    return fig


def plot_filters(model, path, *, layer_name=None, untrained: bool = False) -> Path:
    """``filter_figure`` as a PNG."""
    return save_png(filter_figure(model, layer_name=layer_name, untrained=untrained), path)


def default_feature_layers(model, count: int = 3) -> list[str]:
    """Low-, mid- and high-level convolution layers: the first, middle and last ones
    (nested models' layers by path)."""
    from cnnkeras.inspection.graph import walk_layers

    convs = [path for path, layer in walk_layers(model)
             if hasattr(layer, "kernel_size") and len(layer.output.shape) == 4]
    if not convs:
        raise ValueError(f"{model.name!r} has no convolution layers to show.")
    picks = np.linspace(0, len(convs) - 1, num=min(count, len(convs))).round().astype(int)
    return [convs[i] for i in dict.fromkeys(picks)]


def model_input(model, image, input_range: tuple = (0, 255)) -> np.ndarray:
    """One image (HxW, HxWxC or a batch of one; uint8 in [0, 255] or floats in [0, 1]) as
    ``model`` takes it: fitted by ``cnnkeras.data.images.fit_image``, float32 pixels
    in ``input_range`` ([0, 255], what every model cnnkeras builds takes, or [0, 1] for a
    model whose record says so: one trained before the scaling moved into the model)."""
    from cnnkeras.data.images import fit_image

    image = np.asarray(image)
    image = image[0] if image.ndim == 4 else image
    image = image[..., None] if image.ndim == 2 else image
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype("float32") * 255.0), 0, 255).astype(np.uint8)
    height, width, channels = model.inputs[0].shape[1:]
    size = image.shape[:2] if height is None or width is None else (height, width)
    fitted = fit_image(image, size=size, channels=channels or image.shape[-1], fit="resize")
    low, high = input_range
    return low + np.asarray(fitted, dtype="float32") * np.float32((high - low) / 255.0)


def feature_maps(model, image, layer_names: Sequence[str], *,
                 input_range: tuple = (0, 255)) -> list[np.ndarray]:
    """The outputs of ``layer_names`` (nested ones by path) for one image, each (h, w, maps)."""
    from cnnkeras.inspection.graph import find_layer, layer_probe

    pixels = model_input(model, image, input_range)[None]
    return [np.asarray(layer_probe(model, find_layer(model, name)[0])(pixels, training=False))[0]
            for name in layer_names]


def plot_feature_maps(model, image, layer_names, path, *, max_maps: int = 8,
                      input_range: tuple = (0, 255)) -> Path:
    """One row per layer: the ``max_maps`` most active maps of each, for one input image
    given to ``model`` in its ``input_range``."""
    layer_names = list(layer_names or default_feature_layers(model))
    maps = feature_maps(model, image, layer_names, input_range=input_range)
    fig, axes = _grid(len(maps) * (max_maps + 1), columns=max_maps + 1)
    axes = axes.reshape(len(maps), max_maps + 1)
    shown = model_input(model, image)
    for row, (name, activation) in enumerate(zip(layer_names, maps, strict=True)):
        axes[row, 0].imshow(np.clip(shown / max(shown.max(), 1e-12), 0, 1).squeeze(),
                            cmap="gray")
        axes[row, 0].set_title(f"{name}\n{'x'.join(map(str, activation.shape))}", fontsize=7)
        order = np.argsort(activation.reshape(-1, activation.shape[-1]).mean(0))[::-1]
        for column, channel in enumerate(order[:max_maps], 1):
            axes[row, column].imshow(activation[..., channel], cmap="viridis")
    fig.suptitle(f"{model.name}: feature maps, low to high level")
    return save_png(fig, path)


def pareto_front(costs, scores, *, maximize: bool = True) -> np.ndarray:
    """Indices of the points no other point beats on both cost (lower) and score."""
    order = np.lexsort((-np.asarray(scores) if maximize else np.asarray(scores),
                        np.asarray(costs)))
    front, best = [], None
    for index in order:
        score = scores[index]
        if best is None or (score > best if maximize else score < best):
            front.append(index)
            best = score
    return np.array(front, dtype=int)


def plot_pareto(table, cost: str, score: str, path, *, maximize: bool = True) -> Path:
    """Each run a point of cost against score (log cost axis), the Pareto front joined."""
    costs = table[cost].astype(float).to_numpy()
    scores = table[score].astype(float).to_numpy()
    front = pareto_front(costs, scores, maximize=maximize)
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    axis.scatter(costs, scores, color="tab:blue", alpha=0.6, label="run")
    axis.plot(costs[front], scores[front], color="tab:red", marker="o", label="Pareto front")
    for index in front:
        axis.annotate(str(table["run_name"].iloc[index]), (costs[index], scores[index]),
                      fontsize=7, xytext=(4, 4), textcoords="offset points")
    axis.set_xscale("log")
    axis.set_xlabel(cost)
    axis.set_ylabel(score)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(f"{score} against {cost}")
    return save_png(fig, path)


def plot_metric_curves(curves, metric: str, path) -> Path:
    """``{run name: [(step, value), ...]}`` overlaid, epoch on the x axis."""
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        if points:
            steps, values = zip(*points, strict=True)
            axis.plot(np.asarray(steps) + 1, values, marker="o", label=name)
    axis.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    axis.set_title(f"{metric} of the top runs")
    return save_png(fig, path)
