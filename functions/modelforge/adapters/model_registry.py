"""The models table, the model registry.

Three kinds of item share the table:

* a **version** of a ``(machine_name, indicator)`` model: ``model_name = "<machine>#<indicator>"``,
  ``version`` (sortable, newest last), status ``candidate | champion | archived | rejected``, metrics,
  artifact address and sha256, lineage, and who promoted or rejected it and why;
* the **champion pointer**: ``model_name = "champion#<machine>#<indicator>"``, ``version = "current"``. It
  names the champion's version and carries a revision number;
* the **promotion history**: ``model_name = "history#<machine>#<indicator>"``, one item per change, keyed
  by the pointer revision it produced.

A promotion is one DynamoDB transaction. It moves the pointer (conditioned on the revision the caller read),
marks the new version ``champion`` and the old one ``archived``, and appends the history. Two racing
promotions cannot leave two champions or none: one transaction wins and the other is cancelled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from modelforge.adapters.aws import client, resource
from modelforge.adapters.dynamo import from_dynamo, to_dynamo
from modelforge.errors import ModelNotFoundError, PromotionConflictError

CHAMPION = "champion"
CANDIDATE = "candidate"
ARCHIVED = "archived"
REJECTED = "rejected"
POINTER_VERSION = "current"

_serializer = TypeSerializer()


def model_name(machine_name: str, indicator: str) -> str:
    return f"{machine_name}#{indicator}"


def decision_threshold(version: dict[str, Any]) -> float | None:
    """The score above which a status model says "pre-failure", chosen on validation data at training."""
    for source in (version.get("params") or {}, version.get("metrics") or {}):
        if source.get("threshold") is not None:
            return float(source["threshold"])
    return None


def _pointer_key(name: str) -> dict[str, str]:
    return {"model_name": f"champion#{name}", "version": POINTER_VERSION}


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in to_dynamo(item).items()}


class ModelRegistry:
    def __init__(self, table_name: str, table: Any | None = None, dynamodb: Any | None = None) -> None:
        self._table_name = table_name
        self._table = table if table is not None else resource("dynamodb").Table(table_name)
        self._dynamodb = dynamodb if dynamodb is not None else client("dynamodb")

    # ------------------------------------------------------------------ versions

    def put_version(self, item: dict[str, Any]) -> None:
        """Adds a version, as a candidate; refuses to overwrite an existing one."""
        self._table.put_item(Item=to_dynamo({"status": CANDIDATE, **item}),
                             ConditionExpression=Attr("version").not_exists())

    def get_version(self, name: str, version: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"model_name": name, "version": version}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def list_versions(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        page = self._table.query(KeyConditionExpression=Key("model_name").eq(name), ScanIndexForward=False,
                                 Limit=limit)
        return [from_dynamo(item) for item in page.get("Items", [])]

    def reject(self, name: str, version: str, reason: str, by: str, now: datetime) -> None:
        """candidate -> rejected. Never touches a champion."""
        try:
            self._table.update_item(
                Key={"model_name": name, "version": version},
                UpdateExpression="SET #status = :rejected, status_reason = :reason, decided_by = :by, "
                "decided_at = :now",
                ConditionExpression=Attr("status").eq(CANDIDATE),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":rejected": REJECTED, ":reason": reason[:2000], ":by": by,
                                           ":now": now.isoformat()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise PromotionConflictError(f"{name} {version} is no longer a candidate") from error
            raise

    # ------------------------------------------------------------------ champion

    def champion_pointer(self, name: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key=_pointer_key(name), ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def champion(self, name: str) -> dict[str, Any] | None:
        pointer = self.champion_pointer(name)
        return self.get_version(name, pointer["champion_version"]) if pointer else None

    def list_champions(self) -> list[dict[str, Any]]:
        """Every model's champion. A scan of the pointer items: the drift schedule runs it once a day over a
        table of a few items per model, where an index would cost a write on every promotion."""
        pointers: list[dict[str, Any]] = []
        query: dict[str, Any] = {"FilterExpression": Attr("version").eq(POINTER_VERSION)
                                 & Attr("model_name").begins_with(f"{CHAMPION}#")}
        while True:
            page = self._table.scan(**query)
            pointers += [from_dynamo(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        champions = []
        for pointer in pointers:
            name = pointer["model_name"].removeprefix(f"{CHAMPION}#")
            item = self.get_version(name, pointer["champion_version"])
            if item is not None:
                champions.append(item)
        return champions

    def record_drift(self, name: str, version: str, check: dict[str, Any]) -> None:
        """Keeps the latest drift check on the version's item (only if the version exists)."""
        self._table.update_item(Key={"model_name": name, "version": version},
                                UpdateExpression="SET last_drift_check = :check",
                                ConditionExpression=Attr("version").exists(),
                                ExpressionAttributeValues={":check": to_dynamo(check)})

    def promote(self, name: str, version: str, *, reason: str, by: str, now: datetime) -> dict[str, Any]:
        """Makes ``version`` the champion, atomically. Raises ModelNotFoundError for an unknown version and
        PromotionConflictError when another promotion won the race (read again and retry if still wanted)."""
        target = self.get_version(name, version)
        if target is None:
            raise ModelNotFoundError(f"{name} has no version {version}")
        pointer = self.champion_pointer(name)
        previous = pointer["champion_version"] if pointer else None
        if previous == version:
            return pointer or {}
        stamp = now.isoformat()
        revision = int(pointer["revision"]) if pointer else 0

        pointer_update: dict[str, Any] = {
            "TableName": self._table_name,
            "Key": _wire(_pointer_key(name)),
            "UpdateExpression": "SET champion_version = :version, revision = :next, updated_at = :now, "
            "promoted_by = :by, reason = :reason",
            "ExpressionAttributeValues": _wire({":version": version, ":next": revision + 1, ":now": stamp,
                                                ":by": by, ":reason": reason[:2000]}),
        }
        if pointer:
            pointer_update["ConditionExpression"] = "revision = :expected"
            pointer_update["ExpressionAttributeValues"] |= _wire({":expected": revision})
        else:
            pointer_update["ConditionExpression"] = "attribute_not_exists(model_name)"

        actions: list[dict[str, Any]] = [
            {"Update": pointer_update},
            {"Update": {
                "TableName": self._table_name,
                "Key": _wire({"model_name": name, "version": version}),
                "UpdateExpression": "SET #status = :champion, status_reason = :reason, decided_by = :by, "
                "decided_at = :now",
                "ConditionExpression": "attribute_exists(version) AND #status <> :champion",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _wire({":champion": CHAMPION, ":reason": reason[:2000], ":by": by,
                                                    ":now": stamp}),
            }},
            {"Put": {
                "TableName": self._table_name,
                # Keyed by the pointer's new revision: the history is in promotion order, one row per change.
                "Item": _wire({"model_name": f"history#{name}", "version": f"revision#{revision + 1:010d}",
                               "from_version": previous, "to_version": version, "reason": reason[:2000],
                               "promoted_by": by, "at": stamp}),
                "ConditionExpression": "attribute_not_exists(version)",
            }},
        ]
        if previous:
            actions.append({"Update": {
                "TableName": self._table_name,
                "Key": _wire({"model_name": name, "version": previous}),
                "UpdateExpression": "SET #status = :archived, archived_at = :now",
                "ConditionExpression": "#status = :champion",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": _wire({":archived": ARCHIVED, ":champion": CHAMPION, ":now": stamp}),
            }})
        try:
            self._dynamodb.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("TransactionCanceledException",
                                                   "ConditionalCheckFailedException"):
                raise PromotionConflictError(
                    f"the champion of {name} changed while promoting {version}; read it again and retry"
                ) from error
            raise
        return {"champion_version": version, "previous_version": previous, "revision": revision + 1}

    def history(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        page = self._table.query(KeyConditionExpression=Key("model_name").eq(f"history#{name}"),
                                 ScanIndexForward=False, Limit=limit)
        return [from_dynamo(item) for item in page.get("Items", [])]
