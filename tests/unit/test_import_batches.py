"""import_dataset writes machines in batches through the stores' write_many, and reports progress."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelforge.domain.importing import ImportedData, normalize_events
from modelforge.importer import import_dataset


class _Recorder:
    def __init__(self) -> None:
        self.batches: list[dict[str, pd.DataFrame]] = []

    def write_many(self, frames: dict[str, pd.DataFrame]) -> Any:
        self.batches.append(dict(frames))


def test_import_dataset_writes_batches_and_reports_progress() -> None:
    names = [f"PUMP-{i}" for i in range(1, 6)]
    telemetry = {name: pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=3, tz="UTC"),
                                     "Eng_RPM": [1.0, 2.0, 3.0]}) for name in names}
    events = normalize_events(pd.DataFrame({"machine_name": ["PUMP-2", "PUMP-2", "PUMP-5"],
                                            "timestamp": pd.to_datetime(["2025-01-02", "2025-01-03", "2025-01-02"],
                                                                        utc=True)}).assign(component=None,
                                                                                           failure_type="failure"))
    store, event_store, seen = _Recorder(), _Recorder(), []
    summary = import_dataset(ImportedData(telemetry=telemetry, events=events), store, event_store,  # type: ignore[arg-type]
                             progress=lambda done, total: seen.append((done, total)), batch_machines=2)
    assert [list(batch) for batch in store.batches] == [names[:2], names[2:4], names[4:]]
    assert [list(batch) for batch in event_store.batches] == [names[:2], names[2:4], names[4:]]
    assert seen == [(2, 5), (4, 5), (5, 5)]
    written = {name: frame for batch in event_store.batches for name, frame in batch.items()}
    assert len(written["PUMP-2"]) == 2 and len(written["PUMP-5"]) == 1 and len(written["PUMP-1"]) == 0
    assert list(written["PUMP-1"].columns) == list(events.columns)  # an empty set clears an earlier import's
    assert summary["machines"] == 5 and summary["events"] == 3
