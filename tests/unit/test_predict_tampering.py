"""POST /predict against artifacts tampered with AFTER promotion (issue 16, finding 8): the real predict handler,
ChampionCache, ModelRegistry and ModelArtifactStore on moto's DynamoDB and S3 (in-process, the models bucket
versioned as template.yaml makes it). No fake reimplements the check here.

What someone with write access could do once a model is champion, and what predictions do about it:
* write other bytes under the champion's key (s3:PutObject): a new object version, never the one served;
* also point the registry at that version (a registry write): the sha256 no longer matches, so a cold
  start refuses (409) and a warm function keeps serving the model it verified;
* point the registry at a bucket they own holding bytes with the recorded sha256: refused unread.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost as xgb
from moto import mock_aws

from localcloud.template import LocalStack
from modelforge.adapters import aws as aws_clients
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.handlers import predict as predict_handler
from modelforge.jobs import Indicator
from modelforge.registry import ArtifactRef, ModelName, ModelVersion
from tests.unit.conftest import read_event

MACHINE = "M-1"
NAME = ModelName(MACHINE, Indicator.STATUS)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ELSEWHERE = "someone-elses-bucket"
RECORDS = [{"a": 3.0, "b": 0.0}, {"a": 2.5, "b": 1.0}, {"a": -3.0, "b": 0.5}]


def _booster(failing_when_a_is_positive: bool) -> bytes:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    label = (x[:, 0] > 0) == failing_when_a_is_positive
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=label.astype(float), feature_names=["a", "b"]), 10)
    return bytes(booster.save_raw(raw_format="ubj"))


REGISTERED = _booster(True)
PLANTED = _booster(False)  # a valid model that answers the opposite: serving it would show


@dataclass
class Cloud:
    s3: Any
    dynamodb: Any
    table: str
    bucket: str
    registry: ModelRegistry

    def register(self, version: str, data: bytes) -> ArtifactRef:
        ref = ModelArtifactStore(self.bucket, s3=self.s3).put(f"model/{version}/xgb_model_{MACHINE}.ubj", data)
        self.registry.put_version(ModelVersion(
            model_name=NAME, version=version, machine_name=MACHINE, indicator=Indicator.STATUS,
            artifact_uri=ref.uri, artifact_sha256=ref.sha256, artifact_version_id=ref.version_id,
            feature_names=["a", "b"], metrics={"threshold": 0.5}, trained_at=NOW))
        return ref

    def overwrite(self, ref: ArtifactRef, data: bytes) -> str:
        """A plain PutObject under the artifact's key: what s3:PutObject on model/* allows."""
        return str(self.s3.put_object(Bucket=self.bucket, Key=ref.uri.split("/", 3)[3], Body=data)["VersionId"])

    def edit_record(self, version: str, **attributes: str) -> None:
        """A write to the version's registry item behind the registry's back."""
        names = {f"#{k}": k for k in attributes}
        self.dynamodb.update_item(TableName=self.table, Key={"model_name": {"S": NAME.key}, "version": {"S": version}},
                                  UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attributes),
                                  ExpressionAttributeNames=names,
                                  ExpressionAttributeValues={f":{k}": {"S": v} for k, v in attributes.items()})


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, local_stack: LocalStack) -> Iterator[Cloud]:
    table, bucket = local_stack.tables["ModelsTable"], local_stack.buckets["ModelsBucket"]
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "MODELS_TABLE_NAME": table.name,
                       "MODELS_BUCKET_NAME": bucket, "CHAMPION_REFRESH_SECONDS": "0",
                       "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    _cold_start()
    with mock_aws():
        s3, dynamodb = boto3.client("s3", region_name="us-east-1"), boto3.client("dynamodb", region_name="us-east-1")
        for name in (bucket, ELSEWHERE):
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        dynamodb.create_table(TableName=table.name, KeySchema=table.properties["KeySchema"],
                              AttributeDefinitions=table.properties["AttributeDefinitions"],
                              BillingMode="PAY_PER_REQUEST")
        yield Cloud(s3, dynamodb, table.name, bucket, ModelRegistry(table.name))
    _cold_start()


def _cold_start() -> None:
    """A new predict process: no champion in memory, no boto3 client made for another endpoint."""
    predict_handler.champion_cache.cache_clear()
    aws_clients.client.cache_clear()
    aws_clients.resource.cache_clear()


def _predict(lambda_context: Any) -> tuple[int, dict[str, Any]]:
    event = read_event("post_train")
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["body"] = json.dumps({"machine_name": MACHINE, "indicator": "status", "records": RECORDS})
    event["headers"]["content-length"] = str(len(event["body"]))
    response = predict_handler.lambda_handler(event, lambda_context)
    return int(response["statusCode"]), json.loads(response["body"])


def test_other_bytes_under_the_champion_s_key_are_never_served(cloud: Cloud, lambda_context: Any) -> None:
    champion = cloud.register("v1", REGISTERED)
    cloud.registry.promote(NAME, "v1", reason="first", by="gate", now=NOW)
    status, before = _predict(lambda_context)
    assert status == 200, before

    cloud.overwrite(champion, PLANTED)
    _cold_start()  # a process that reads the artifact anew, after the overwrite
    status, after = _predict(lambda_context)
    assert status == 200, after
    assert after["model_version"] == "v1" and after["predictions"] == before["predictions"]
    assert [p["prediction"] for p in after["predictions"]] == [1.0, 1.0, 0.0]  # the registered model's answers


def test_a_champion_whose_record_names_other_bytes_is_refused_and_a_warm_one_keeps_serving(
        cloud: Cloud, lambda_context: Any) -> None:
    cloud.register("v1", REGISTERED)
    challenger = cloud.register("v2", REGISTERED)
    cloud.registry.promote(NAME, "v1", reason="first", by="gate", now=NOW)
    status, before = _predict(lambda_context)
    assert status == 200 and before["model_version"] == "v1"

    planted = cloud.overwrite(challenger, PLANTED)
    cloud.edit_record("v2", artifact_version_id=planted)  # the record points at the planted bytes ...
    cloud.registry.promote(NAME, "v2", reason="moved by hand", by="someone", now=NOW)  # ... and v2 is champion
    status, warm = _predict(lambda_context)
    assert status == 200, warm
    assert warm["model_version"] == "v1" and warm["predictions"] == before["predictions"]  # the verified model

    _cold_start()  # nothing verified to fall back on: refused, never served
    status, cold = _predict(lambda_context)
    assert status == 409, cold
    assert "sha256" in cold["detail"] and hashlib.sha256(PLANTED).hexdigest() in cold["detail"]


def test_a_champion_whose_record_names_another_bucket_is_refused_unread(cloud: Cloud, lambda_context: Any) -> None:
    champion = cloud.register("v1", REGISTERED)
    key = champion.uri.split("/", 3)[3]
    elsewhere = cloud.s3.put_object(Bucket=ELSEWHERE, Key=key, Body=PLANTED)["VersionId"]
    cloud.edit_record("v1", artifact_uri=f"s3://{ELSEWHERE}/{key}", artifact_version_id=elsewhere,
                      artifact_sha256=hashlib.sha256(PLANTED).hexdigest())  # consistent, and not ours
    cloud.registry.promote(NAME, "v1", reason="first", by="gate", now=NOW)
    reads: list[str] = []
    aws_clients.client("s3").meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: reads.append(params["Bucket"]))

    status, body = _predict(lambda_context)
    assert status == 409, body
    assert f"not in the models bucket {os.environ['MODELS_BUCKET_NAME']}" in body["detail"]
    assert reads == []
