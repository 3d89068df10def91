"""Processed telemetry in the data bucket (the data contract is in README.md, "Data contract").

Layout, one hive-style dataset per machine:
    s3://<data bucket>/<prefix>/machine_name=<name>/month=<YYYY-MM>/<file>.parquet
    s3://<data bucket>/<prefix>/machine_name=<name>/_manifest.json   (range, row count, columns)

``TelemetryCatalog`` needs only boto3 (the API functions); ``TelemetryStore`` reads and writes the parquet
with awswrangler (the training image and the data loaders), imported lazily so the API never pays for it.
"""

from __future__ import annotations

from datetime import date, datetime
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


class TelemetryStore:
    """Reads one machine's rows for a date range; writes a machine's dataset and its manifest."""

    def __init__(self, bucket: str, prefix: str, catalog: TelemetryCatalog | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._catalog = catalog if catalog is not None else TelemetryCatalog(bucket, prefix)

    def _path(self, machine_name: str) -> str:
        return f"s3://{self._bucket}/{machine_prefix(self._prefix, machine_name)}"

    def read(self, machine_name: str, start: date | None, end: date | None) -> pd.DataFrame:
        import awswrangler as wr
        import pandas as pd

        first_month = start.strftime("%Y-%m") if start else None
        last_month = end.strftime("%Y-%m") if end else None

        # Partition pruning: only the months that overlap the range are downloaded.
        def in_range(partition: dict[str, str]) -> bool:
            month = partition["month"]
            return (first_month is None or month >= first_month) and (last_month is None or month <= last_month)

        try:
            frame = wr.s3.read_parquet(self._path(machine_name), dataset=True, partition_filter=in_range,
                                       path_suffix=".parquet")
        except wr.exceptions.NoFilesFound:
            return pd.DataFrame()
        frame = frame.drop(columns=["month"], errors="ignore")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        if start is not None:
            frame = frame[frame["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        if end is not None:
            frame = frame[frame["timestamp"] < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)]
        return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)

    def write(self, machine_name: str, frame: pd.DataFrame) -> MachineSummary:
        """Replaces the machine's dataset with ``frame`` (a ``timestamp`` column plus sensor columns)."""
        import awswrangler as wr
        import pandas as pd

        data = frame.copy()
        data["timestamp"] = pd.to_datetime(data["timestamp"], utc=True)
        data = data.sort_values("timestamp", kind="stable")
        data["month"] = data["timestamp"].dt.strftime("%Y-%m")
        wr.s3.to_parquet(data, self._path(machine_name), dataset=True, partition_cols=["month"],
                         mode="overwrite", index=False)
        summary = MachineSummary(
            machine_name=machine_name,
            first_timestamp=_as_datetime(data["timestamp"].iloc[0]),
            last_timestamp=_as_datetime(data["timestamp"].iloc[-1]),
            rows=len(data),
            columns=[c for c in frame.columns if c != "month"],
        )
        self._catalog.write_manifest(summary)
        return summary


def _as_datetime(value: Any) -> datetime:
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
