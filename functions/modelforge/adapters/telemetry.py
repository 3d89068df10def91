"""Processed telemetry in the data bucket (the data contract is in README.md, "Data contract").

Layout, one hive-style dataset per machine:
    s3://<data bucket>/<prefix>/machine_name=<name>/month=<YYYY-MM>/<file>.parquet
    s3://<data bucket>/<prefix>/machine_name=<name>/_manifest.json   (range, row count, columns)

``TelemetryCatalog`` needs only boto3 (the API functions); ``TelemetryStore`` reads and writes the parquet
with awswrangler (the training image and the data loaders), imported lazily so the API never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelforge.adapters.aws import client
from modelforge.schemas import MachineSummary

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_NAME = "_manifest.json"
# Where the processed telemetry lives in the data bucket unless a deployment says otherwise (the settings'
# PROCESSED_DATA_PREFIX, the importer's --prefix): the one place this default is written.
DEFAULT_PREFIX = "processed"
# Requests in flight at once for a fleet's objects (manifests, parquet files, listings): enough to hide S3's
# latency, few enough for a Lambda's or a laptop's sockets and cores.
MAX_CONCURRENCY = 16
# A fleet read or write with more machines than this lists the whole prefix once instead of each machine's.
LIST_PREFIX_ABOVE = 32


def machine_prefix(prefix: str, machine_name: str) -> str:
    return f"{prefix.strip('/')}/machine_name={machine_name}/"


class TelemetryCatalog:
    def __init__(self, bucket: str, prefix: str, s3: Any | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._s3 = s3 if s3 is not None else client("s3")

    def describe(self, machine_name: str) -> MachineSummary | None:
        key = machine_prefix(self._prefix, machine_name) + MANIFEST_NAME
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return MachineSummary.model_validate_json(body)

    def list_machines(self) -> list[MachineSummary]:
        names: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=f"{self._prefix}/", Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                part = common["Prefix"].rstrip("/").rsplit("/", 1)[-1]
                if part.startswith("machine_name="):
                    names.append(part.removeprefix("machine_name="))
        machines = [m for m in (self.describe(name) for name in sorted(names)) if m is not None]
        return machines

    def write_manifest(self, summary: MachineSummary) -> None:
        key = machine_prefix(self._prefix, summary.machine_name) + MANIFEST_NAME
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=summary.model_dump_json().encode(),
                            ContentType="application/json")

    def write_manifests(self, summaries: Sequence[MachineSummary]) -> None:
        """Many machines' manifests, ``MAX_CONCURRENCY`` requests at a time (S3 has no batch put)."""
        concurrently(self.write_manifest, summaries)

    def keys(self, machine_names: Sequence[str]) -> dict[str, list[str]]:
        """Every object under each machine's prefix (its parquet files and its manifest), by machine: one
        listing of the whole prefix for a fleet, one per machine for a few."""
        wanted = set(machine_names)
        found: dict[str, list[str]] = {name: [] for name in machine_names}
        prefixes = ([f"{self._prefix}/"] if len(wanted) > LIST_PREFIX_ABOVE
                    else [machine_prefix(self._prefix, name) for name in machine_names])
        for keys in concurrently(self._list, prefixes):
            for key in keys:
                part = key[len(self._prefix) + 1:].split("/", 1)[0]
                name = part.removeprefix("machine_name=")
                if part.startswith("machine_name=") and name in wanted:
                    found[name].append(key)
        return found

    def delete(self, keys: Iterable[str]) -> None:
        """Deletes ``keys``, a thousand per request (S3's DeleteObjects limit)."""
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})

    def get(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body

    def _list(self, prefix: str) -> list[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        return [item["Key"] for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix)
                for item in page.get("Contents", [])]


def concurrently(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``function`` over ``items`` in order, up to ``MAX_CONCURRENCY`` at a time (boto3 clients are thread-safe)."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENCY, len(items))) as pool:
        return list(pool.map(function, items))


class TelemetryStore:
    """Reads one machine's rows, or a fleet's, for a date range; writes machines' datasets and manifests.

    awswrangler makes a client from the session it is given, else from a new ``boto3.Session`` (botocore's
    service data loaded again, ~0.2 s, three times a write): the store hands it one session for its life."""

    def __init__(self, bucket: str, prefix: str, catalog: TelemetryCatalog | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._catalog = catalog if catalog is not None else TelemetryCatalog(bucket, prefix)

    @cached_property
    def _session(self) -> Any:
        import boto3

        return boto3.session.Session()

    def _path(self, machine_name: str) -> str:
        return f"s3://{self._bucket}/{machine_prefix(self._prefix, machine_name)}"

    def read(self, machine_name: str, start: date | None, end: date | None) -> pd.DataFrame:
        import awswrangler as wr
        import pandas as pd

        in_range = _month_filter(start, end)
        try:
            # Partition pruning: only the months that overlap the range are downloaded.
            frame = wr.s3.read_parquet(self._path(machine_name), dataset=True,
                                       partition_filter=lambda partition: in_range(partition["month"]),
                                       path_suffix=".parquet", boto3_session=self._session)
        except wr.exceptions.NoFilesFound:
            return pd.DataFrame()
        return _in_range(frame, start, end)

    def read_many(self, machine_names: Sequence[str], start: date | None,
                  end: date | None) -> dict[str, pd.DataFrame]:
        """What :meth:`read` returns for each machine, in a few large requests: one listing (of the prefix,
        or of each machine's for a few machines), the months in range fetched ``MAX_CONCURRENCY`` at a time,
        each file converted as awswrangler converts it."""
        import pandas as pd

        in_range = _month_filter(start, end)
        files = [(name, key) for name, keys in self._catalog.keys(machine_names).items() for key in keys
                 if key.endswith(".parquet") and in_range(_partition(key, "month"))]
        parts = concurrently(lambda item: _file_frame(self._catalog.get(item[1]), self._path(item[0]),
                                                      f"s3://{self._bucket}/{item[1]}"), files)
        by_machine: dict[str, list[pd.DataFrame]] = {}
        for (name, _), part in zip(files, parts, strict=True):
            by_machine.setdefault(name, []).append(part)
        read = {name: pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
                for name, pieces in by_machine.items()}
        frames = {name: pd.DataFrame() for name in machine_names}
        for names in _same_columns(read).values():
            frames.update(_in_range_pooled({name: read[name] for name in names}, start, end))
        return frames

    def write(self, machine_name: str, frame: pd.DataFrame) -> MachineSummary:
        """Replaces the machine's dataset with ``frame`` (a ``timestamp`` column plus sensor columns)."""
        import awswrangler as wr

        data = _with_month(frame)
        wr.s3.to_parquet(data, self._path(machine_name), dataset=True, partition_cols=["month"],
                         mode="overwrite", index=False, boto3_session=self._session)
        summary = _summary(machine_name, data, frame)
        self._catalog.write_manifest(summary)
        return summary

    def write_many(self, frames: Mapping[str, pd.DataFrame]) -> list[MachineSummary]:
        """What :meth:`write` does for each machine, in a few large requests: the machines' old objects
        listed and deleted in batches, one awswrangler write per set of machines with the same columns
        (their rows pooled, the machine a partition column: the same files at the same paths, written
        concurrently), then the manifests."""
        import awswrangler as wr

        old = self._catalog.keys(list(frames))
        self._catalog.delete(key for keys in old.values() for key in keys)
        summaries: dict[str, MachineSummary] = {}
        for names in _same_columns(frames).values():
            # The partition is its own column, or a frame has no rows (write's error): one by one.
            if "machine_name" in frames[names[0]].columns or any(len(frames[name]) == 0 for name in names):
                for name in names:
                    data = _with_month(frames[name])
                    wr.s3.to_parquet(data, self._path(name), dataset=True, partition_cols=["month"],
                                     mode="overwrite", index=False, boto3_session=self._session)
                    summaries[name] = _summary(name, data, frames[name])
                continue
            pooled, bounds = _pooled_with_month({name: frames[name] for name in names})
            wr.s3.to_parquet(pooled, f"s3://{self._bucket}/{self._prefix}/", dataset=True,
                             partition_cols=["machine_name", "month"], mode="append", index=False,
                             use_threads=True, concurrent_partitioning=True, boto3_session=self._session)
            for i, name in enumerate(names):
                summaries[name] = _summary(name, pooled.iloc[[bounds[i], bounds[i + 1] - 1]], frames[name],
                                           rows=int(bounds[i + 1] - bounds[i]))
        ordered = [summaries[name] for name in frames]
        self._catalog.write_manifests(ordered)
        return ordered


def _pooled_with_month(frames: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, Any]:
    """:func:`_with_month` of each frame, run once over their pooled rows (the machine a column, sorted by
    machine then time, stable), and each machine's row bounds in it."""
    import numpy as np
    import pandas as pd

    names = list(frames)
    sizes = [len(frame) for frame in frames.values()]
    pooled = pd.concat(list(frames.values()), ignore_index=True)
    pooled["timestamp"] = pd.to_datetime(pooled["timestamp"], utc=True)
    group = np.repeat(np.arange(len(names)), sizes)
    order = np.lexsort((pooled["timestamp"].array.asi8, group))  # stable: as sort_values(kind="stable")
    pooled = pooled.iloc[order].reset_index(drop=True)
    pooled["month"] = pooled["timestamp"].dt.strftime("%Y-%m")
    pooled["machine_name"] = np.repeat(np.array(names, dtype=object), sizes)
    return pooled, np.r_[0, np.cumsum(sizes)]


def _with_month(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    data = frame.copy()
    data["timestamp"] = pd.to_datetime(data["timestamp"], utc=True)
    data = data.sort_values("timestamp", kind="stable")
    data["month"] = data["timestamp"].dt.strftime("%Y-%m")
    return data


def _summary(machine_name: str, data: pd.DataFrame, frame: pd.DataFrame, rows: int | None = None) -> MachineSummary:
    """The manifest: ``data`` the machine's rows sorted by time (or just its first and last, with ``rows``)."""
    return MachineSummary(
        machine_name=machine_name,
        first_timestamp=_as_datetime(data["timestamp"].iloc[0]),
        last_timestamp=_as_datetime(data["timestamp"].iloc[-1]),
        rows=len(data) if rows is None else rows,
        columns=[c for c in frame.columns if c != "month"],
    )


def _same_columns(data: Mapping[str, pd.DataFrame]) -> dict[tuple[Any, ...], list[str]]:
    """Machines grouped by their columns and dtypes: pooled in one write, each keeps exactly its columns."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name, frame in data.items():
        groups.setdefault(tuple((str(c), str(d)) for c, d in frame.dtypes.items()), []).append(name)
    return groups


def _month_filter(start: date | None, end: date | None) -> Callable[[str], bool]:
    first_month = start.strftime("%Y-%m") if start else None
    last_month = end.strftime("%Y-%m") if end else None

    def in_range(month: str) -> bool:
        return (first_month is None or month >= first_month) and (last_month is None or month <= last_month)

    return in_range


def _partition(key: str, name: str) -> str:
    for part in key.split("/"):
        if part.startswith(f"{name}="):
            return part.removeprefix(f"{name}=")
    return ""


def _file_frame(body: bytes, root: str, path: str) -> pd.DataFrame:
    """One parquet file as awswrangler's dataset read makes it (its conversion, the path's partitions as
    columns), so :meth:`TelemetryStore.read_many` returns what :meth:`TelemetryStore.read` does."""
    import io

    import pyarrow.parquet as pq
    from awswrangler import _data_types
    from awswrangler._arrow import _add_table_partitions, _table_to_df

    table = pq.read_table(io.BytesIO(body))
    table = _add_table_partitions(table=table, path=path, path_root=root)
    kwargs = _data_types.pyarrow2pandas_defaults(use_threads=False, kwargs=None, dtype_backend="numpy_nullable")
    return _table_to_df(table=table, kwargs=kwargs)


def _in_range_pooled(read: Mapping[str, pd.DataFrame], start: date | None,
                     end: date | None) -> dict[str, pd.DataFrame]:
    """:func:`_in_range` of each machine's frame (all with the same columns), run once over their pooled rows:
    sorted by machine, then time (stable, so each machine's rows end in the order ``_in_range`` leaves
    them), then cut back per machine; the partition column ``machine_name`` put back as awswrangler adds it."""
    import numpy as np
    import pandas as pd

    names = list(read)
    first = read[names[0]]
    columns = [c for c in first.columns if c != "month"]
    # Dropped once from the pool, not from each frame (pandas' drop costs more than the rows of a small one).
    pooled = pd.concat(list(read.values()), ignore_index=True).drop(columns=["machine_name"], errors="ignore")
    pooled["__machine"] = np.repeat(np.arange(len(names)), [len(frame) for frame in read.values()])
    pooled = _in_range(pooled, start, end, by="__machine")
    bounds = np.searchsorted(pooled["__machine"].to_numpy(), np.arange(len(names) + 1))
    pooled = pooled.drop(columns=["__machine"])
    frames = {}
    for i, name in enumerate(names):
        frame = pooled.iloc[bounds[i]:bounds[i + 1]].reset_index(drop=True)
        if "machine_name" in columns:
            frame.insert(columns.index("machine_name"), "machine_name",
                         pd.Categorical([name] * len(frame), categories=[name]))
        frames[name] = frame
    return frames


def _in_range(frame: pd.DataFrame, start: date | None, end: date | None, by: str | None = None) -> pd.DataFrame:
    import pandas as pd

    frame = frame.drop(columns=["month"], errors="ignore")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    if start is not None:
        frame = frame[frame["timestamp"] >= pd.Timestamp(start, tz="UTC")]
    if end is not None:
        frame = frame[frame["timestamp"] < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)]
    return frame.sort_values([by, "timestamp"] if by else "timestamp", kind="stable").reset_index(drop=True)


def _as_datetime(value: Any) -> datetime:
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
