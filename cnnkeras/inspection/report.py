"""What `cnnkeras inspect`, `filters` and `feature-maps` print and draw.

A model is named by a registered architecture (built untrained, at its paper's
input size unless told otherwise) or by the path of a saved ``.keras`` file.
The layer table prints as a rich table on a terminal and as plain text when
the output is a pipe or a file.
"""

from __future__ import annotations

import inspect as _inspect
import sys
from pathlib import Path
from typing import Optional, Sequence

from cnnkeras.inspection.analysis import LayerRow, MemoryReport, layer_table, memory_report


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


def resolve_model(model_or_name: str, *, input_shape: Optional[Sequence[int]] = None,
                  num_classes: Optional[int] = None):
    """A saved ``.keras`` model, or the named architecture built untrained."""
    import cnnkeras
    import cnnkeras.layers  # noqa: F401  (registers the custom layers for loading)
    from cnnkeras.registry import ARCHITECTURES

    path = Path(model_or_name)
    if path.suffix == ".keras" or path.is_file():
        if not path.is_file():
            raise ValueError(f"model file {str(path)!r} does not exist.")
        import keras

        return keras.models.load_model(path, compile=False)
    if model_or_name not in cnnkeras.list_architectures():
        known = ", ".join(cnnkeras.list_architectures())
        raise ValueError(f"{model_or_name!r} is neither a saved .keras file nor a registered "
                         f"architecture. Known architectures: {known}.")
    if num_classes is None:
        signature = _inspect.signature(ARCHITECTURES.get(model_or_name))
        num_classes = signature.parameters["num_classes"].default
    shape = tuple(input_shape) if input_shape else cnnkeras.default_input_shape(model_or_name)
    return cnnkeras.build(model_or_name, input_shape=shape, num_classes=num_classes)


def _axes_text(values) -> str:
    if values is None:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def table_lines(rows: Sequence[LayerRow]) -> list[tuple[str, ...]]:
    """Header and one tuple of cells per layer, plus a total line."""
    lines = [("layer", "kind", "output", "params", "RF", "jump", "FLOPs", "activations")]
    for row in rows:
        lines.append((row.name, row.kind, "x".join(map(str, row.output_shape)),
                      f"{row.params:,}", _axes_text(row.receptive_field), _axes_text(row.jump),
                      f"{row.flops:,}", f"{row.activations:,}"))
    lines.append(("total", "", "", f"{sum(r.params for r in rows):,}", "", "",
                  f"{sum(r.flops for r in rows):,}", f"{sum(r.activations for r in rows):,}"))
    return lines


def memory_lines(report: MemoryReport) -> list[tuple[str, str]]:
    return [(label, f"{value:,} B ({value / 2**20:,.1f} MiB)") for label, value in report.rows()]


def _print_plain(lines, out) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = [c.ljust(w) if i < 3 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells).rstrip(), file=out)


def _print_rich(lines, title: str, console) -> None:
    from rich.table import Table

    table = Table(title=title)
    for index, header in enumerate(lines[0]):
        table.add_column(header, justify="left" if index < 3 or len(lines[0]) == 2 else "right")
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
        _print_rich([("memory", "bytes")] + memory_lines(report), title, console)
    else:
        _print_plain(table_lines(rows), out)
        print(f"\n{title}", file=out)
        _print_plain(memory_lines(report), out)
    return report
