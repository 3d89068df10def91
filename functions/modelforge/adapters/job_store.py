"""The jobs table. Every status write is conditional, so a job never moves backwards."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from modelforge.adapters.aws import resource
from modelforge.adapters.dynamo import from_dynamo, to_dynamo
from modelforge.errors import JobNotFoundError, JobTransitionError
from modelforge.jobs import Job, JobStatus

# Global secondary indexes, declared in template.yaml (JobsTable).
BY_MACHINE_INDEX = "by_machine"
BY_STATUS_INDEX = "by_status"
BY_CREATED_INDEX = "by_created"
# The statuses of a job that still holds (or waits for) a training function.
IN_FLIGHT = (JobStatus.PENDING, JobStatus.RUNNING)
# Every job carries this constant so BY_CREATED_INDEX can list all jobs newest first without a scan.
JOB_RECORD_TYPE = "training_job"
_INDEX_KEYS = {
    BY_MACHINE_INDEX: frozenset({"process_id", "machine_name", "created_at"}),
    BY_STATUS_INDEX: frozenset({"process_id", "status", "created_at"}),
    BY_CREATED_INDEX: frozenset({"process_id", "record_type", "created_at"}),
}


class JobStore:
    def __init__(self, table_name: str, table: Any | None = None) -> None:
        self._table = table if table is not None else resource("dynamodb").Table(table_name)

    def create(self, job: Job) -> None:
        item = to_dynamo({k: v for k, v in job.model_dump(mode="json", exclude_none=True).items()})
        # The indexes sort created_at as a string: every stamp must have the same width to sort by time.
        item["created_at"] = sortable_timestamp(job.created_at)
        item["updated_at"] = sortable_timestamp(job.updated_at)
        item["record_type"] = JOB_RECORD_TYPE
        self._table.put_item(Item=item, ConditionExpression=Attr("process_id").not_exists())

    def get(self, process_id: str) -> Job:
        item = self._table.get_item(Key={"process_id": process_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise JobNotFoundError(f"no job with process_id {process_id}")
        return _to_job(item)

    def mark_failed(self, process_id: str, reason: str, now: datetime) -> None:
        """pending/running -> failed. Refused (JobTransitionError) from a terminal state."""
        stamp = now.isoformat()
        try:
            self._table.update_item(
                Key={"process_id": process_id},
                UpdateExpression="SET #status = :failed, error_message = :reason, updated_at = :now, "
                "finished_at = :now",
                ConditionExpression=Attr("status").is_in([JobStatus.PENDING.value, JobStatus.RUNNING.value]),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":failed": JobStatus.FAILED.value, ":reason": reason[:2000],
                                           ":now": stamp},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobTransitionError(f"job {process_id} is missing or already finished") from error
            raise

    def record_outcome(self, process_id: str, model_id: str, bucket_address: str) -> None:
        """A Batch job's model, on its running job: what the state machine's ReadBatchOutcome reads back (a
        Batch job's result does not travel through submitJob.sync). MarkJobCompleted still completes it."""
        try:
            self._table.update_item(
                Key={"process_id": process_id},
                UpdateExpression="SET model_id = :model, bucket_address = :address",
                ConditionExpression=Attr("status").eq(JobStatus.RUNNING.value),
                ExpressionAttributeValues={":model": model_id, ":address": bucket_address},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobTransitionError(f"job {process_id} is not running") from error
            raise

    def count_in_flight(self) -> int:
        """Jobs pending or running: a COUNT query per status on BY_STATUS_INDEX (never a scan; no item is
        read back). The index is eventually consistent, so a job written a moment ago may not be counted yet:
        a bound checked with this is a soft one."""
        total = 0
        for status in IN_FLIGHT:
            query: dict[str, Any] = {"IndexName": BY_STATUS_INDEX, "Select": "COUNT",
                                     "KeyConditionExpression": Key("status").eq(status.value)}
            while True:
                page = self._table.query(**query)
                total += int(page["Count"])
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total

    def list(self, *, machine_name: str | None, status: JobStatus | None, limit: int,
             next_token: str | None) -> tuple[list[Job], str | None]:
        """Newest first, through a GSI (never a scan)."""
        query: dict[str, Any] = {"ScanIndexForward": False, "Limit": limit}
        if machine_name is not None:
            query |= {"IndexName": BY_MACHINE_INDEX, "KeyConditionExpression": Key("machine_name").eq(machine_name)}
            if status is not None:
                query["FilterExpression"] = Attr("status").eq(status.value)
        elif status is not None:
            query |= {"IndexName": BY_STATUS_INDEX, "KeyConditionExpression": Key("status").eq(status.value)}
        else:
            query |= {"IndexName": BY_CREATED_INDEX,
                      "KeyConditionExpression": Key("record_type").eq(JOB_RECORD_TYPE)}
        if next_token:
            query["ExclusiveStartKey"] = decode_page_token(next_token, _INDEX_KEYS[query["IndexName"]])
        try:
            page = self._table.query(**query)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ValidationException" and next_token:
                raise ValueError("next_token does not belong to this listing") from error
            raise
        jobs = [_to_job(item) for item in page.get("Items", [])]
        last_key = page.get("LastEvaluatedKey")
        return jobs, encode_page_token(last_key) if last_key else None


def encode_page_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(from_dynamo(key)).encode()).decode()


def decode_page_token(token: str, expected_keys: frozenset[str]) -> dict[str, Any]:
    """A page token is the last key of a page of this very listing: the table key plus the index's keys."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError as error:
        raise ValueError("next_token is not a token this API issued") from error
    if (not isinstance(key, dict) or set(key) != expected_keys
            or not all(isinstance(v, str) and v for v in key.values())):
        raise ValueError("next_token is not a token this API issued for this listing")
    return key


def sortable_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_job(item: dict[str, Any]) -> Job:
    fields = set(Job.model_fields)
    return Job.model_validate({k: v for k, v in from_dynamo(item).items() if k in fields})
