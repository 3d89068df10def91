"""The models table, the model registry.

Three kinds of item share the table (the types are in ``modelforge.registry``):

* a **version** of a ``(machine_name, indicator)`` model (``ModelVersion``): ``model_name = "<machine>#<indicator>"``,
  ``version`` (sortable, newest last), status ``candidate | champion | archived | rejected``, metrics,
  artifact address and sha256, lineage, and who promoted or rejected it and why;
* the **champion pointer** (``ChampionPointer``): ``model_name = "champion#<machine>#<indicator>"``,
  ``version = "current"``. It names the champion's version and carries a revision number;
* the **promotion history** (``PromotionEvent``): ``model_name = "history#<machine>#<indicator>"``, one item
  per change, keyed by the pointer revision it produced.

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
from modelforge.registry import (
    CHAMPION_PREFIX,
    ChampionPointer,
    ModelName,
    ModelVersion,
    PromotionEvent,
    PromotionResult,
    VersionStatus,
)

POINTER_VERSION = "current"
REVISION_PREFIX = "revision#"
MAX_REASON = 2000

_serializer = TypeSerializer()


# ---------------------------------------------------------------------- items <-> types


def version_item(version: ModelVersion) -> dict[str, Any]:
    """The version's attributes: the fields that were given (a version read back writes back exactly the
    attributes it was read with), datetimes as ISO strings. Values JSON cannot hold become strings, as
    ``to_dynamo`` has always made them."""
    item: dict[str, Any] = version.model_dump(mode="json", exclude_unset=True, fallback=str)
    return item


def version_from_item(item: dict[str, Any]) -> ModelVersion:
    """A version item (Decimals and all) as a ModelVersion; attributes it does not know are kept."""
    return ModelVersion.model_validate(from_dynamo(item))


def pointer_from_item(item: dict[str, Any]) -> ChampionPointer:
    """The pointer item, whose key ``champion#<machine>#<indicator>`` names the model."""
    fields = from_dynamo(item)
    return ChampionPointer.model_validate({**fields, "name": ModelName.from_pointer_key(fields["model_name"])})


def event_from_item(item: dict[str, Any]) -> PromotionEvent:
    """A history item, whose sort key ``revision#<0-padded n>`` is the pointer revision it produced."""
    fields = from_dynamo(item)
    return PromotionEvent.model_validate({**fields, "revision": int(fields["version"].removeprefix(REVISION_PREFIX))})


def event_item(name: ModelName, event: PromotionEvent) -> dict[str, Any]:
    """A history item, keyed by the pointer's new revision: the history is in promotion order. The override
    attributes are written only for an override, so every other item keeps the attributes it always had."""
    left_out = {"revision"} if event.override else {"revision", "override", "overridden_status"}
    return {"model_name": name.history_key, "version": f"{REVISION_PREFIX}{event.revision:010d}",
            **event.model_dump(mode="json", exclude=left_out)}


def _pointer_key(name: ModelName) -> dict[str, str]:
    return {"model_name": name.pointer_key, "version": POINTER_VERSION}


def _version_key(name: ModelName, version: str) -> dict[str, str]:
    return {"model_name": name.key, "version": version}


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in to_dynamo(item).items()}


class ModelRegistry:
    def __init__(self, table_name: str, table: Any | None = None, dynamodb: Any | None = None) -> None:
        self._table_name = table_name
        self._table = table if table is not None else resource("dynamodb").Table(table_name)
        self._dynamodb = dynamodb if dynamodb is not None else client("dynamodb")

    # ------------------------------------------------------------------ versions

    def put_version(self, version: ModelVersion) -> None:
        """Adds a version, as a candidate; refuses to overwrite an existing one."""
        self._table.put_item(Item=to_dynamo({"status": VersionStatus.CANDIDATE.value, **version_item(version)}),
                             ConditionExpression=Attr("version").not_exists())

    def get_version(self, name: ModelName, version: str) -> ModelVersion | None:
        item = self._table.get_item(Key=_version_key(name, version), ConsistentRead=True).get("Item")
        return version_from_item(item) if item else None

    def list_versions(self, name: ModelName, limit: int = 50) -> list[ModelVersion]:
        page = self._table.query(KeyConditionExpression=Key("model_name").eq(name.key), ScanIndexForward=False,
                                 Limit=limit)
        return [version_from_item(item) for item in page.get("Items", [])]

    def versions_trained_by(self, name: ModelName, process_id: str) -> list[ModelVersion]:
        """The versions one job registered (normally one, none if it died first): every page of the model's
        versions, filtered on process_id, read consistently, because the reconciler's sweep deletes whatever
        these do not reference and the item may have been written a moment ago."""
        query: dict[str, Any] = {"KeyConditionExpression": Key("model_name").eq(name.key),
                                 "FilterExpression": Attr("process_id").eq(process_id), "ConsistentRead": True}
        versions: list[ModelVersion] = []
        while True:
            page = self._table.query(**query)
            versions += [version_from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return versions
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def reject(self, name: ModelName, version: str, reason: str, by: str, now: datetime) -> None:
        """candidate -> rejected. Never touches a champion."""
        try:
            self._table.update_item(
                Key=_version_key(name, version),
                UpdateExpression="SET #status = :rejected, status_reason = :reason, decided_by = :by, "
                "decided_at = :now",
                ConditionExpression=Attr("status").eq(VersionStatus.CANDIDATE.value),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":rejected": VersionStatus.REJECTED.value, ":reason": reason[:MAX_REASON],
                                           ":by": by, ":now": now.isoformat()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise PromotionConflictError(f"{name} {version} is no longer a candidate") from error
            raise

    def record_drift(self, name: ModelName, version: str, check: dict[str, Any]) -> None:
        """Keeps the latest drift check on the version's item (only if the version exists)."""
        self._table.update_item(Key=_version_key(name, version),
                                UpdateExpression="SET last_drift_check = :check",
                                ConditionExpression=Attr("version").exists(),
                                ExpressionAttributeValues={":check": to_dynamo(check)})

    # ------------------------------------------------------------------ champion

    def champion_pointer(self, name: ModelName) -> ChampionPointer | None:
        item = self._table.get_item(Key=_pointer_key(name), ConsistentRead=True).get("Item")
        return pointer_from_item(item) if item else None

    def champion(self, name: ModelName) -> ModelVersion | None:
        pointer = self.champion_pointer(name)
        return self.get_version(name, pointer.champion_version) if pointer else None

    def list_champions(self) -> list[ModelVersion]:
        """Every model's champion. A scan of the pointer items: the drift schedule runs it once a day over a
        table of a few items per model, where an index would cost a write on every promotion."""
        champions = []
        for pointer in self.list_champion_pointers():
            version = self.get_version(pointer.name, pointer.champion_version)
            if version is not None:
                champions.append(version)
        return champions

    def list_champion_pointers(self) -> list[ChampionPointer]:
        """Every model's champion pointer (the scan alone): what the retraining planner fans out over, each
        item reading its own champion."""
        pointers: list[ChampionPointer] = []
        query: dict[str, Any] = {"FilterExpression": Attr("version").eq(POINTER_VERSION)
                                 & Attr("model_name").begins_with(CHAMPION_PREFIX)}
        while True:
            page = self._table.scan(**query)
            pointers += [pointer_from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return pointers

    def history(self, name: ModelName, limit: int = 50) -> list[PromotionEvent]:
        """The changes of champion, newest first."""
        page = self._table.query(KeyConditionExpression=Key("model_name").eq(name.history_key),
                                 ScanIndexForward=False, Limit=limit)
        return [event_from_item(item) for item in page.get("Items", [])]

    def promote(self, name: ModelName, version: str, *, reason: str, by: str, now: datetime,
                expected_status: VersionStatus | None = None, override: bool = False) -> PromotionResult:
        """Makes ``version`` the champion, atomically. Raises ModelNotFoundError for an unknown version and
        PromotionConflictError when another promotion won the race (read again and retry if still wanted).

        ``expected_status``: the status the caller read and decided on (a manual promotion allows some statuses
        only); the transaction is then cancelled if the version's status changed since, say because the gate
        rejected it meanwhile. ``override``: the caller is overriding that status (see ``PromotionEvent``)."""
        current = self.get_version(name, version)
        if current is None:
            raise ModelNotFoundError(f"{name} has no version {version}")
        pointer = self.champion_pointer(name)
        if pointer is not None and pointer.champion_version == version:
            return PromotionResult(champion_version=version, previous_version=None, revision=pointer.revision)
        event = PromotionEvent(revision=(pointer.revision if pointer else 0) + 1, to_version=version,
                               from_version=pointer.champion_version if pointer else None,
                               reason=reason[:MAX_REASON], promoted_by=by, at=now, override=override,
                               overridden_status=(expected_status or current.status) if override else None)
        actions = [self._move_pointer(name, event), self._crown(name, event, expected_status),
                   self._append_history(name, event)]
        if event.from_version:
            actions.append(self._archive(name, event))
        try:
            self._dynamodb.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("TransactionCanceledException",
                                                   "ConditionalCheckFailedException"):
                raise PromotionConflictError(
                    f"the champion of {name} changed while promoting {version}; read it again and retry"
                ) from error
            raise
        return PromotionResult(champion_version=version, previous_version=event.from_version,
                               revision=event.revision)

    # One helper per action of the promotion's transaction.

    def _move_pointer(self, name: ModelName, event: PromotionEvent) -> dict[str, Any]:
        """The pointer names the new champion, if its revision is still the one read (or, for a model's first
        champion, if there is still no pointer)."""
        update: dict[str, Any] = {
            "TableName": self._table_name,
            "Key": _wire(_pointer_key(name)),
            "UpdateExpression": "SET champion_version = :version, revision = :next, updated_at = :now, "
            "promoted_by = :by, reason = :reason",
            "ExpressionAttributeValues": _wire({":version": event.to_version, ":next": event.revision,
                                                ":now": event.at.isoformat(), ":by": event.promoted_by,
                                                ":reason": event.reason}),
        }
        if event.from_version is None:
            update["ConditionExpression"] = "attribute_not_exists(model_name)"
        else:
            update["ConditionExpression"] = "revision = :expected"
            update["ExpressionAttributeValues"] |= _wire({":expected": event.revision - 1})
        return {"Update": update}

    def _crown(self, name: ModelName, event: PromotionEvent,
               expected_status: VersionStatus | None) -> dict[str, Any]:
        """The new champion's own item says so, with who decided and why, and whether that overrode its status
        (a promotion without override clears an earlier override's marks, as it replaces who and why); it must
        exist, not already be the champion and, if the caller decided on a status, still have it."""
        values: dict[str, Any] = {":champion": VersionStatus.CHAMPION.value, ":reason": event.reason,
                                  ":by": event.promoted_by, ":now": event.at.isoformat()}
        update = "SET #status = :champion, status_reason = :reason, decided_by = :by, decided_at = :now"
        if event.override:
            update += ", #override = :override, #overridden = :overridden"
            values |= {":override": True, ":overridden": str(event.overridden_status)}
        else:
            update += " REMOVE #override, #overridden"
        condition = "attribute_exists(version) AND #status <> :champion"
        if expected_status is not None:
            condition += " AND #status = :expected"
            values[":expected"] = expected_status.value
        return {"Update": {
            "TableName": self._table_name,
            "Key": _wire(_version_key(name, event.to_version)),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status", "#override": "override",
                                         "#overridden": "overridden_status"},
            "ExpressionAttributeValues": _wire(values),
        }}

    def _append_history(self, name: ModelName, event: PromotionEvent) -> dict[str, Any]:
        """One history row per change; a revision is never written twice."""
        return {"Put": {"TableName": self._table_name, "Item": _wire(event_item(name, event)),
                        "ConditionExpression": "attribute_not_exists(version)"}}

    def _archive(self, name: ModelName, event: PromotionEvent) -> dict[str, Any]:
        """The former champion becomes archived, if it still is the champion."""
        assert event.from_version is not None
        return {"Update": {
            "TableName": self._table_name,
            "Key": _wire(_version_key(name, event.from_version)),
            "UpdateExpression": "SET #status = :archived, archived_at = :now",
            "ConditionExpression": "#status = :champion",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": _wire({":archived": VersionStatus.ARCHIVED.value,
                                                ":champion": VersionStatus.CHAMPION.value,
                                                ":now": event.at.isoformat()}),
        }}
