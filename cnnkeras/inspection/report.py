"""What `cnnkeras inspect`, `filters` and `feature-maps` print and draw.

A model is named by a registered architecture (built untrained, at its paper's
input size unless told otherwise), by the path of a saved ``.keras`` file, or by an
MLflow URI (``runs:/<run id>/model``, ``models:/NAME/VERSION``, ``models:/NAME/latest``,
``models:/<model id>``), loaded by ``cnnkeras.tracking.models.load``.
The layer table prints as a rich table on a terminal and as plain text when
the output is a pipe or a file.
"""

from __future__ import annotations

import inspect as _inspect
import sys
from pathlib import Path
from typing import Optional, Sequence

from cnnkeras.inspection.analysis import (
    LayerRow,
    MemoryReport,
    layer_table,
    memory_report,
    parameter_counts,
)

RIGHT_ALIGNED = ("params", "RF", "jump", "FLOPs", "activations")  # counts; the rest is text


def parse_shape(text: str) -> tuple[int, ...]:
    """``"227,227,3"`` -> (227, 227, 3)."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"--input-shape must be positive integers separated by commas, "
                         f"e.g. 227,227,3. Received: {text!r}")
    return shape


URI_SCHEMES = ("runs:/", "models:/")  # as cnnkeras.tracking.models, without importing MLflow
BUILT_RANGE = (0, 255)  # the pixels a model built from its name takes (its own layer scales them)


def names_a_saved_model(model_or_name: str) -> bool:
    """Whether ``model_or_name`` is a saved model (a path or an MLflow URI: its weights as
    saved), not an architecture name (a model built fresh, with random initial weights)."""
    path = Path(model_or_name)
    return model_or_name.startswith(URI_SCHEMES) or path.suffix == ".keras" or path.is_file()


def resolve(model_or_name: str, *, input_shape: Optional[Sequence[int]] = None,
            num_classes: Optional[int] = None) -> tuple:
    """``(model, input range)``: a saved model with the pixel range it records, or the
    named architecture built untrained, fed ``BUILT_RANGE``."""
    if names_a_saved_model(model_or_name):
        from cnnkeras.tracking.models import load

        loaded = load(model_or_name)
        return loaded.model, loaded.input_range
    return resolve_model(model_or_name, input_shape=input_shape,
                         num_classes=num_classes), BUILT_RANGE


def resolve_model(model_or_name: str, *, input_shape: Optional[Sequence[int]] = None,
                  num_classes: Optional[int] = None):
    """A saved model (``.keras`` file or MLflow URI), or the named architecture built
    untrained."""
    import cnnkeras
    from cnnkeras.registry import ARCHITECTURES

    if names_a_saved_model(model_or_name):
        return cnnkeras.load_model(model_or_name)
    if model_or_name not in cnnkeras.list_architectures():
        known = ", ".join(cnnkeras.list_architectures())
        raise ValueError(f"{model_or_name!r} is neither a saved .keras file, a runs:/ or "
                         f"models:/ URI nor a registered architecture. Known architectures: "
                         f"{known}.")
    if num_classes is None:
        signature = _inspect.signature(ARCHITECTURES.get(model_or_name))
        num_classes = signature.parameters["num_classes"].default
    shape = tuple(input_shape) if input_shape else cnnkeras.default_input_shape(model_or_name)
    return cnnkeras.build(model_or_name, input_shape=shape, num_classes=num_classes)


def _axes_text(values) -> str:
    if values is None:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _window_cells(row: LayerRow) -> tuple[str, str, str]:
    """Kernel (``11x11``), stride (``4``) and padding (``valid``); blank off conv and pooling."""
    if row.kernel is None:
        return "", "", ""
    kernel = "x".join(map(str, row.kernel))
    if row.dilation and any(d > 1 for d in row.dilation):
        kernel += f" (dilation {_axes_text(row.dilation)})"
    return kernel, _axes_text(row.stride), row.padding or ""


def table_lines(rows: Sequence[LayerRow]) -> list[tuple[str, ...]]:
    """Header and one tuple of cells per layer, plus a total line.

    The activations total counts the image once: a preprocessing row (``pixels``, the
    input rescaled; ``LayerRow.preprocessing``) is shown but not added again.
    """
    lines = [("layer", "kind", "kernel", "stride", "padding", "output", "params", "RF", "jump",
              "FLOPs", "activations")]
    for row in rows:
        lines.append((row.name, row.kind, *_window_cells(row),
                      "x".join(map(str, row.output_shape)), f"{row.params:,}",
                      _axes_text(row.receptive_field), _axes_text(row.jump), f"{row.flops:,}",
                      f"{row.activations:,}"))
    lines.append(("total", "", "", "", "", "", f"{sum(r.params for r in rows):,}", "", "",
                  f"{sum(r.flops for r in rows):,}",
                  f"{sum(r.activations for r in rows if not r.preprocessing):,}"))
    return lines


def parameters_line(model) -> str:
    """``parameters: trainable 60,000 · non-trainable 840 · total 60,840``."""
    trainable, fixed = parameter_counts(model)
    return (f"parameters: trainable {trainable:,} · non-trainable {fixed:,} · "
            f"total {trainable + fixed:,}")


def memory_lines(report: MemoryReport) -> list[tuple[str, str]]:
    return [(label, f"{value:,} B ({value / 2**20:,.1f} MiB)") for label, value in report.rows()]


def _print_plain(lines, out) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = [c.rjust(w) if header in RIGHT_ALIGNED else c.ljust(w)
                 for header, c, w in zip(lines[0], line, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=out)


def _print_rich(lines, title: str, console) -> None:
    from rich.table import Table

    table = Table(title=title)
    for header in lines[0]:
        table.add_column(header, justify="right" if header in RIGHT_ALIGNED else "left")
    for line in lines[1:]:
        table.add_row(*line)
    console.print(table)


def print_inspection(model, *, batch_size: int = 1, dtype: str = "float32",
                     optimizer: str = "adam", out=None) -> MemoryReport:
    """The layer table and the memory report of ``model``; returns the report."""
    from rich.console import Console

    out = out or sys.stdout
    rows = layer_table(model)
    report = memory_report(model, batch_size=batch_size, dtype=dtype, optimizer=optimizer)
    title = (f"{model.name}: input {'x'.join(map(str, rows[0].output_shape))}; memory for "
             f"batch {batch_size}, {dtype}, {optimizer}")
    console = Console(file=out)
    if console.is_terminal:
        _print_rich(table_lines(rows), model.name, console)
        console.print(parameters_line(model))
        _print_rich([("memory", "bytes")] + memory_lines(report), title, console)
    else:
        _print_plain(table_lines(rows), out)
        print(parameters_line(model), file=out)
        print(f"\n{title}", file=out)
        _print_plain(memory_lines(report), out)
    return report
