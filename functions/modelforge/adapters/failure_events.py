"""Recorded failure events in the data bucket, next to the processed telemetry (README.md, "Data contract").

Layout, one object per machine:
    s3://<data bucket>/<prefix>/machine_name=<name>/events.parquet

Columns: ``machine_name`` (string), ``timestamp`` (timestamp[ns, UTC]), ``component`` (string, nullable),
``failure_type`` (string, nullable). One object per machine because events are few (a handful per machine,
against thousands of telemetry rows): a training job reads exactly its machine's object, and an import
replaces a machine's events without touching another's. The prefix must not be the telemetry's own:
``TelemetryStore.write`` overwrites everything under ``<prefix>/machine_name=<name>/``.

Parquet goes through pyarrow with an explicit schema (never pickle), imported inside the methods like
``TelemetryStore`` does, so the API's zip functions, which import this package, do not pay for pandas.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelforge.adapters.aws import client

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

EVENTS_OBJECT = "events.parquet"
DEFAULT_PREFIX = "failure_events"


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        pa.field("machine_name", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("component", pa.string()),
        pa.field("failure_type", pa.string()),
    ])


class FailureEventStore:
    """Writes a machine's recorded failures (replacing the previous ones) and reads machines' events."""

    def __init__(self, bucket: str, prefix: str = DEFAULT_PREFIX, s3: Any | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._s3 = s3 if s3 is not None else client("s3")
        self._empty_body: bytes | None = None

    @property
    def prefix(self) -> str:
        return self._prefix

    def key(self, machine_name: str) -> str:
        return f"{self._prefix}/machine_name={machine_name}/{EVENTS_OBJECT}"

    def write(self, machine_name: str, events: pd.DataFrame) -> int:
        """Replaces the machine's events with ``events`` (the four columns; extra columns are not stored).
        An empty frame is stored too: re-importing a machine without failures must clear its old ones.
        Returns the number of events stored. Raises ``DataImportError`` (a ``ValueError``) on bad input."""
        body, count = self._parquet(machine_name, events)
        self._s3.put_object(Bucket=self._bucket, Key=self.key(machine_name), Body=body,
                            ContentType="application/vnd.apache.parquet")
        return count

    def write_many(self, events: Mapping[str, pd.DataFrame]) -> int:
        """:meth:`write` for each machine, every object checked and encoded before the first request, then
        ``MAX_CONCURRENCY`` requests at a time (S3 has no batch put). Returns the number of events stored."""
        from modelforge.adapters.telemetry import concurrently

        encoded = [(name, *(self._parquet(name, frame) if len(frame) else self._empty(name)))
                   for name, frame in events.items()]
        concurrently(lambda item: self._s3.put_object(Bucket=self._bucket, Key=self.key(item[0]), Body=item[1],
                                                      ContentType="application/vnd.apache.parquet"), encoded)
        return sum(count for _, _, count in encoded)

    def _empty(self, machine_name: str) -> tuple[bytes, int]:
        """The object of a machine without events: the same bytes for every machine (no row names one), so
        encoded once per store; a fleet is mostly such machines."""
        from modelforge.domain.importing import check_machine_name

        check_machine_name(machine_name, source="FailureEventStore.write")
        return self._empty_bytes(), 0

    def _empty_bytes(self) -> bytes:
        from modelforge.domain.importing import empty_events

        if self._empty_body is None:
            self._empty_body, _ = self._parquet("EMPTY", empty_events())
        return self._empty_body

    def _parquet(self, machine_name: str, events: pd.DataFrame) -> tuple[bytes, int]:
        """The machine's events object, and how many events it holds."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from modelforge.domain.importing import check_machine_name, normalize_events
        from modelforge.errors import DataImportError

        check_machine_name(machine_name, source="FailureEventStore.write")
        data = normalize_events(events)
        others = sorted(set(data["machine_name"]) - {machine_name})
        if others:
            raise DataImportError(f"events written for machine '{machine_name}' name other machine(s): "
                                  f"{', '.join(others[:10])}")
        # Column by column: pyarrow's from_pandas goes through Series.values, which pandas 3 deprecates for
        # tz-aware columns. Timestamps as epoch ns, which is exactly what the schema's type stores.
        table = pa.table([
            pa.array(data["machine_name"].to_numpy(dtype=object), type=pa.string()),
            pa.array(data["timestamp"].array.asi8, type=pa.timestamp("ns", tz="UTC")),
            pa.array(data["component"].to_numpy(dtype=object), type=pa.string()),
            pa.array(data["failure_type"].to_numpy(dtype=object), type=pa.string()),
        ], schema=_schema())
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue(), len(data)

    def read(self, machine_names: Sequence[str], start: date | None = None,
             end: date | None = None) -> pd.DataFrame:
        """The events of ``machine_names`` from ``start`` to ``end`` (both days inclusive, UTC), sorted by
        machine then timestamp. Machines without an events object contribute nothing; the four columns are
        there even when no event is."""
        import pandas as pd
        import pyarrow.parquet as pq

        from modelforge.domain.importing import empty_events, normalize_events

        if isinstance(machine_names, str):  # one name would otherwise be read letter by letter
            machine_names = [machine_names]
        from modelforge.adapters.telemetry import concurrently

        # A fleet's objects fetched MAX_CONCURRENCY at a time, kept in the order asked for.
        bodies = concurrently(lambda name: self._get(self.key(name)), list(dict.fromkeys(machine_names)))
        # An import's empty objects (most of a fleet's) are known bytes: nothing to decode.
        empty = self._empty_bytes()
        frames = [pq.read_table(io.BytesIO(body), schema=_schema()).to_pandas() for body in bodies
                  if body is not None and body != empty]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_events()
        data = normalize_events(pd.concat(frames, ignore_index=True))
        if start is not None:
            data = data[data["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        if end is not None:
            data = data[data["timestamp"] < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)]
        return data.reset_index(drop=True)

    def _get(self, key: str) -> bytes | None:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return body
