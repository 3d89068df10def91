"""The triggers table (template.yaml: TriggersTable): trigger records, each run's record and per-model
decisions, and the per-model in-flight locks, told apart by ``record_type``. Every status write is
conditional, so a trigger never moves backwards, and the lock is a conditional put: two racing planner runs
cannot both start a retrain of one model."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from modelforge.adapters.aws import resource
from modelforge.adapters.dynamo import from_dynamo, to_dynamo
from modelforge.adapters.job_store import sortable_timestamp
from modelforge.errors import TriggerNotFoundError, TriggerTransitionError
from modelforge.triggers import ItemOutcome, RetrainRun, RunStatus, Trigger, TriggerStatus

# Global secondary indexes, declared in template.yaml (TriggersTable).
BY_STATUS_INDEX = "by_status"
BY_MACHINE_INDEX = "by_machine"
BY_RUN_INDEX = "by_run"
BY_TYPE_INDEX = "by_type"
TRIGGER, DECISION, RUN, LOCK = "trigger", "decision", "run", "lock"
# A lock outlives the longest training (the training state machine's TimeoutSeconds, 7,200 s) with a margin:
# should its release event be lost, the model is retrainable again after this long, not never.
LOCK_TTL = timedelta(hours=3)


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "ConditionalCheckFailedException")


class TriggerStore:
    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else resource("dynamodb").Table(table_name)

    # ---------------------------------------------------------------- locks

    def acquire_lock(self, model_name: str, holder: str, now: datetime) -> bool:
        """Whether ``holder`` (a trigger id) now holds the model's in-flight lock; False when another does."""
        try:
            self._table.put_item(
                Item={"trigger_id": f"{LOCK}#{model_name}", "record_type": LOCK, "holder": holder,
                      "created_at": sortable_timestamp(now), "expires_at": sortable_timestamp(now + LOCK_TTL)},
                ConditionExpression=Attr("trigger_id").not_exists() | Attr("expires_at").lt(sortable_timestamp(now)))
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def release_lock(self, model_name: str, holder: str) -> bool:
        """Frees the lock if ``holder`` holds it (a late event of an earlier retrain frees nothing)."""
        try:
            self._table.delete_item(Key={"trigger_id": f"{LOCK}#{model_name}"},
                                    ConditionExpression=Attr("holder").eq(holder))
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def lock_holder(self, model_name: str, now: datetime) -> str | None:
        """The trigger holding the model's lock; None when free or expired (acquire_lock would take it)."""
        item = self._table.get_item(Key={"trigger_id": f"{LOCK}#{model_name}"}, ConsistentRead=True).get("Item")
        if item is None or str(item["expires_at"]) < sortable_timestamp(now):
            return None
        return str(item["holder"])

    # ---------------------------------------------------------------- triggers

    def create(self, trigger: Trigger) -> None:
        self._table.put_item(Item=self._item(trigger), ConditionExpression=Attr("trigger_id").not_exists())

    def get(self, trigger_id: str) -> Trigger:
        item = self._table.get_item(Key={"trigger_id": trigger_id}, ConsistentRead=True).get("Item")
        if item is None or item.get("record_type") != TRIGGER:
            raise TriggerNotFoundError(f"no trigger {trigger_id}")
        return _to_trigger(item)

    def find(self, trigger_id: str) -> Trigger | None:
        try:
            return self.get(trigger_id)
        except TriggerNotFoundError:
            return None

    def transition(self, trigger_id: str, to: TriggerStatus, allowed_from: tuple[TriggerStatus, ...], now: datetime,
                   **fields: Any) -> Trigger:
        """Moves the trigger to ``to`` if its status is one of ``allowed_from`` (TriggerTransitionError if not),
        setting ``fields`` too; returns the trigger as written."""
        values = {"status": to.value, "updated_at": sortable_timestamp(now), **to_dynamo(fields)}
        names = {f"#set{i}": k for i, k in enumerate(values)}  # not boto3's own #n0, :v0
        expression = "SET " + ", ".join(f"#set{i} = :set{i}" for i in range(len(values)))
        try:
            answer = self._table.update_item(
                Key={"trigger_id": trigger_id}, UpdateExpression=expression,
                ConditionExpression=Attr("record_type").eq(TRIGGER)
                & Attr("status").is_in([s.value for s in allowed_from]),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":set{i}": v for i, v in enumerate(values.values())},
                ReturnValues="ALL_NEW")
        except ClientError as error:
            if _conditional_failed(error):
                raise TriggerTransitionError(f"trigger {trigger_id} is not {'/'.join(allowed_from)}") from error
            raise
        return _to_trigger(answer["Attributes"])

    def list_triggers(self, *, status: TriggerStatus | None = None, machine_name: str | None = None,
             run_id: str | None = None, limit: int = 100) -> list[Trigger]:
        """Newest first. One index is queried (the most selective filter given), the others filter its rows."""
        if run_id is not None:
            index, key = BY_RUN_INDEX, Key("run_id").eq(run_id)
        elif machine_name is not None:
            index, key = BY_MACHINE_INDEX, Key("machine_name").eq(machine_name)
        elif status is not None:
            index, key = BY_STATUS_INDEX, Key("status").eq(status.value)
        else:
            index, key = BY_TYPE_INDEX, Key("record_type").eq(TRIGGER)
        found = [t for t in (_to_trigger(i) for i in self._query(index, key, TRIGGER, limit))
                 if (status is None or t.status == status) and (machine_name is None or t.machine_name == machine_name)]
        return found[:limit]

    def _query(self, index: str, key: Any, record_type: str, limit: int | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"IndexName": index, "KeyConditionExpression": key, "ScanIndexForward": False,
                                 "FilterExpression": Attr("record_type").eq(record_type)}
        while limit is None or len(items) < limit:
            page = self._table.query(**query)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items

    # ---------------------------------------------------------------- runs and decisions

    def create_run(self, run: RetrainRun) -> bool:
        """False when the run is already recorded (the API wrote it before starting the execution)."""
        item = to_dynamo(run.model_dump(mode="json", exclude_none=True))
        item |= {"trigger_id": f"{RUN}#{run.run_id}", "record_type": RUN, "run_status": item.pop("status"),
                 "created_at": sortable_timestamp(run.created_at), "updated_at": sortable_timestamp(run.updated_at)}
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr("trigger_id").not_exists())
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def get_run(self, run_id: str) -> RetrainRun | None:
        item = self._table.get_item(Key={"trigger_id": f"{RUN}#{run_id}"}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        fields = from_dynamo(item)
        fields["status"] = fields.pop("run_status")
        return RetrainRun.model_validate(fields)

    def finish_run(self, run_id: str, status: RunStatus, now: datetime, *, summary: dict[str, Any] | None = None,
                   error_message: str | None = None) -> None:
        self._table.update_item(
            Key={"trigger_id": f"{RUN}#{run_id}"},
            UpdateExpression="SET run_status = :s, updated_at = :now, summary = :summary, error_message = :error",
            ConditionExpression=Attr("record_type").eq(RUN),
            ExpressionAttributeValues={":s": status.value, ":now": sortable_timestamp(now),
                                       ":summary": to_dynamo(summary), ":error": error_message})

    def record_outcome(self, outcome: ItemOutcome) -> None:
        """One per model per run (a retried item overwrites its own)."""
        item = to_dynamo(outcome.model_dump(mode="json", exclude_none=True))
        item |= {"trigger_id": f"{DECISION}#{outcome.run_id}#{outcome.model_name}", "record_type": DECISION,
                 "created_at": sortable_timestamp(outcome.decided_at)}
        self._table.put_item(Item=item)

    def outcomes(self, run_id: str) -> list[ItemOutcome]:
        items = self._query(BY_RUN_INDEX, Key("run_id").eq(run_id), DECISION, None)
        return [ItemOutcome.model_validate({**from_dynamo(i), "decided_at": i["created_at"]}) for i in items]

    @staticmethod
    def _item(trigger: Trigger) -> dict[str, Any]:
        item = to_dynamo(trigger.model_dump(mode="json", exclude_none=True))
        item["created_at"] = sortable_timestamp(trigger.created_at)
        item["updated_at"] = sortable_timestamp(trigger.updated_at)
        item["record_type"] = TRIGGER
        return dict(item)


def _to_trigger(item: dict[str, Any]) -> Trigger:
    fields = from_dynamo(item)
    return Trigger.model_validate({k: v for k, v in fields.items() if k in Trigger.model_fields})
