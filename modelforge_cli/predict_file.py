"""`modelforge predict`: a file's rows scored through POST /predict, chunk by chunk (see ``chunks``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from modelforge_cli.chunks import TIMESTAMP, model_window_minutes, plan_chunks
from modelforge_cli.client import EXIT_BAD_INPUT, ApiClient, CliError
from modelforge_cli.output import errors


def read_rows(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, ImportError) as error:
        raise CliError(f"{path}: cannot be read as {path.suffix or 'CSV'}: {error}", EXIT_BAD_INPUT) from error


def records_of(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """JSON records of the model's columns: missing values as null, timestamps as ISO-8601 text."""
    part = frame[columns]
    records = []
    for row in part.itertuples(index=False, name=None):
        record = {}
        for column, value in zip(columns, row, strict=True):
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):
                value = value.item()  # numpy scalars
            record[column] = value
        records.append(record)
    return records


def predict_file(client: ApiClient, machine: str, indicator: str, path: Path,
                 summary: dict[str, Any]) -> pd.DataFrame:
    """The file's rows with ``prediction`` (and ``probability`` for status) beside them."""
    frame = read_rows(path)
    if frame.empty:
        raise CliError(f"{path}: no rows", EXIT_BAD_INPUT)
    names = summary.get("feature_names") or []
    if not names:
        raise CliError(f"{machine}/{indicator} {summary['version']} does not list its features: retrain it with "
                       "this version of the service", EXIT_BAD_INPUT)
    sensors, window = model_window_minutes(names)
    missing = [s for s in sensors if s not in frame.columns]
    if missing:
        raise CliError(f"{path}: lacks the model's sensor column(s) {', '.join(missing)}", EXIT_BAD_INPUT)
    has_time = TIMESTAMP in frame.columns
    columns = [TIMESTAMP, *sensors] if has_time else list(sensors)
    try:
        chunks = list(plan_chunks(frame[TIMESTAMP] if has_time else None, len(frame), window))
    except (ValueError, TypeError) as error:
        raise CliError(f"{path}: {error}", EXIT_BAD_INPUT) from error
    predictions: list[dict[str, Any]] = []
    with Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                  TimeElapsedColumn(), console=errors, transient=True) as progress:
        task = progress.add_task("rows", total=len(frame))
        for chunk in chunks:
            body = {"machine_name": machine, "indicator": indicator,
                    "records": records_of(frame.iloc[chunk.start:chunk.stop], columns)}
            answer = client.post("/predict", body)
            predictions += answer["predictions"][chunk.context:]
            progress.advance(task, chunk.stop - chunk.first_predicted)
    scored = frame.copy()
    scored["prediction"] = [p["prediction"] for p in predictions]
    if indicator == "status":
        scored["probability"] = [p.get("probability") for p in predictions]
    return scored
