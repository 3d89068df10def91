"""The items file of a retraining run: the JSON array of models the Distributed Map's ItemReader reads."""

from __future__ import annotations

import json
from typing import Any

from modelforge.adapters.aws import client

DEFAULT_PREFIX = "retrain-runs/"


class RetrainItemsFile:
    def __init__(self, bucket: str, prefix: str = DEFAULT_PREFIX, s3: Any | None = None) -> None:
        self._bucket, self._prefix = bucket, prefix
        self._s3 = s3 if s3 is not None else client("s3")

    def put_items(self, run_id: str, items: list[dict[str, Any]]) -> tuple[str, str]:
        """Writes the run's items; returns (bucket, key) for the ItemReader."""
        key = f"{self._prefix}{run_id}/items.json"
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(items).encode(),
                            ContentType="application/json")
        return self._bucket, key
