"""The reconciler's sweep of what a dead training left behind (issue 16, finding 6), on moto's S3 and DynamoDB
(in-process; the models table from template.yaml, a versioned bucket as the models bucket is): every version
and delete marker in the job's folder that no registry item of the job references is removed for good, and
nothing else is touched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.template import resolve_stack
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.errors import JobNotFoundError
from modelforge.jobs import Indicator, Job, JobStatus
from modelforge.logic.reconcile import ExecutionStatusChange, sweep_leftovers
from modelforge.logic.training_job import job_prefix
from modelforge.registry import ArtifactRef, ModelName, ModelVersion

BUCKET = "modelforge-test-models"
DEAD = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
NAME = ModelName("M-1", Indicator.STATUS)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SUFFIXES = (".ubj", ".report.html", ".profile.json", ".holdout.parquet")


@dataclass
class Jobs:
    known: tuple[str, ...] = (DEAD, OTHER)

    def get(self, process_id: str) -> Job:
        if process_id not in self.known:
            raise JobNotFoundError(process_id)
        return Job(process_id=process_id, indicator=Indicator.STATUS, machine_name="M-1", status=JobStatus.FAILED,
                   created_at=NOW, updated_at=NOW)

    def mark_failed(self, process_id: str, reason: str, now: datetime) -> None:
        raise AssertionError("the sweep never changes a job")


@dataclass
class Cloud:
    s3: Any
    store: ModelArtifactStore
    registry: ModelRegistry

    def write_job(self, process_id: str, writes: int = len(SUFFIXES)) -> list[ArtifactRef]:
        """What training writes, in order, before its registry item: the first ``writes`` of them."""
        stem = f"{job_prefix('model', process_id)}xgb_model_M-1_2026_01_01_00_00_00"
        return [self.store.put(stem + suffix, f"{process_id}{suffix}".encode()) for suffix in SUFFIXES[:writes]]

    def register(self, process_id: str, refs: list[ArtifactRef], *, with_versions: bool = True) -> None:
        fields: dict[str, Any] = {}
        for kind, ref in zip(("artifact", "report", "profile", "holdout"), refs, strict=True):
            fields |= {f"{kind}_uri": ref.uri, f"{kind}_sha256": ref.sha256}
            if with_versions:
                fields[f"{kind}_version_id"] = ref.version_id
        self.registry.put_version(ModelVersion(model_name=NAME, version=f"20260101T000000Z-{process_id[:8]}",
                                               machine_name="M-1", indicator=Indicator.STATUS, process_id=process_id,
                                               **fields))

    def everything(self) -> set[tuple[str, str, bool]]:
        listing = self.s3.list_object_versions(Bucket=BUCKET)
        return {(v["Key"], v["VersionId"], False) for v in listing.get("Versions", [])} | {
            (m["Key"], m["VersionId"], True) for m in listing.get("DeleteMarkers", [])}

    def sweep(self, process_id: str = DEAD, status: str = "FAILED") -> int:
        change = ExecutionStatusChange.model_validate({"executionArn": f"arn:aws:states:::execution:sm:{process_id}",
                                                       "name": process_id, "status": status})
        return sweep_leftovers(change, jobs=Jobs(), registry=self.registry, artifacts=self.store)


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    table = resolve_stack().tables["ModelsTable"]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName=table.name, KeySchema=table.properties["KeySchema"],
                              AttributeDefinitions=table.properties["AttributeDefinitions"],
                              BillingMode="PAY_PER_REQUEST")
        registry = ModelRegistry(table.name, table=boto3.resource("dynamodb", region_name="us-east-1").Table(
            table.name), dynamodb=dynamodb)
        yield Cloud(s3, ModelArtifactStore(BUCKET, s3=s3), registry)


@pytest.mark.parametrize("written", range(1, len(SUFFIXES) + 1))
def test_a_job_killed_before_its_registry_item_leaves_no_version_and_no_marker(cloud: Cloud, written: int) -> None:
    others = cloud.write_job(OTHER)  # another job, registered: untouched
    cloud.register(OTHER, others)
    untouched = cloud.everything()
    refs = cloud.write_job(DEAD, written)
    cloud.s3.delete_object(Bucket=BUCKET, Key=refs[0].uri.split("/", 3)[3])  # a delete marker over the model

    assert cloud.sweep() == written + 1
    assert cloud.everything() == untouched
    assert cloud.sweep() == 0  # a retried event finds nothing more


def test_a_registered_job_keeps_exactly_the_versions_its_item_names(cloud: Cloud) -> None:
    refs = cloud.write_job(DEAD)
    cloud.register(DEAD, refs)
    model_key = refs[0].uri.split("/", 3)[3]
    cloud.s3.put_object(Bucket=BUCKET, Key=model_key, Body=b"written behind the registry's back")

    assert cloud.sweep(status="TIMED_OUT") == 1
    kept = cloud.everything()
    assert kept == {(ref.uri.split("/", 3)[3], ref.version_id, False) for ref in refs}


def test_an_item_without_version_ids_keeps_every_version_of_its_keys(cloud: Cloud) -> None:
    refs = cloud.write_job(DEAD)
    cloud.register(DEAD, refs, with_versions=False)
    model_key = refs[0].uri.split("/", 3)[3]
    cloud.s3.put_object(Bucket=BUCKET, Key=model_key, Body=b"a second version")
    before = cloud.everything()
    assert cloud.sweep(status="ABORTED") == 0
    assert cloud.everything() == before


@pytest.mark.parametrize(("process_id", "status"), [(DEAD, "RUNNING"), (DEAD, "SUCCEEDED"),
                                                    ("no-such-job", "FAILED")])
def test_nothing_is_swept_for_a_running_or_successful_execution_or_an_unknown_job(
        cloud: Cloud, process_id: str, status: str) -> None:
    cloud.write_job(DEAD)
    before = cloud.everything()
    assert cloud.sweep(process_id, status) == 0
    assert cloud.everything() == before
