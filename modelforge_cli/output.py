"""What the commands print: Rich tables for people, the API's JSON as it came for scripts (``--json``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# In a terminal, its width; piped or in a log, wide enough that tables keep ids and messages on one line.
PIPED_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH)
errors = Console(stderr=True, width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH)


def print_json(payload: Any) -> None:
    """Plain JSON on stdout, no colour or wrapping, so `| jq` reads it."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    grid = Table(title=title, title_justify="left", show_lines=False)
    for index, column in enumerate(columns):  # the first column names the row: never folded
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        grid.add_row(*[cell_text(cell) for cell in row])
    console.print(grid)


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def fields(title: str, payload: dict[str, Any], keys: Sequence[str] | None = None) -> None:
    """A record as a two-column table (field, value), in ``keys``' order, the absent ones left out."""
    names = keys if keys is not None else list(payload)
    table(title, ["field", "value"], [(key, payload[key]) for key in names if payload.get(key) is not None])


def metrics_table(metrics: dict[str, Any] | None, title: str = "metrics (held-out test period)") -> None:
    if metrics:
        table(title, ["metric", "value"], sorted(metrics.items()))
