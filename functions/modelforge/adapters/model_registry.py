"""The models table: one item per trained model version of a (machine_name, indicator) model."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from modelforge.adapters.aws import resource
from modelforge.adapters.dynamo import from_dynamo, to_dynamo


def model_name(machine_name: str, indicator: str) -> str:
    return f"{machine_name}#{indicator}"


class ModelRegistry:
    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else resource("dynamodb").Table(table_name)

    def put_version(self, item: dict[str, Any]) -> None:
        """Adds a version; refuses to overwrite an existing one."""
        self._table.put_item(Item=to_dynamo(item), ConditionExpression=Attr("version").not_exists())

    def get_version(self, name: str, version: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"model_name": name, "version": version}).get("Item")
        return from_dynamo(item) if item else None

    def list_versions(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        page = self._table.query(KeyConditionExpression=Key("model_name").eq(name), ScanIndexForward=False,
                                 Limit=limit)
        return [from_dynamo(item) for item in page.get("Items", [])]
