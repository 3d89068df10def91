"""ModelArtifactStore on moto's S3 (in-process, a versioned bucket as template.yaml makes it): what a read serves
once the key has been written again behind the registry's back, and what it refuses to read at all.

The sha256 check alone proves the bytes match the record; these tests pin the two checks that tie them to the
write training made: the recorded VersionId is what is read, and only the models bucket is read from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.errors import ArtifactIntegrityError, ForeignArtifactError

MODELS = "modelforge-test-models"
ELSEWHERE = "someone-elses-bucket"
KEY = "model/0f8fad5b-d9cb-469f-a165-70867728950e/xgb_model_M-1_2026_01_01_00_00_00.ubj"
MODEL = b"the model training wrote"


class GetObjectCalls:
    """Every GetObject the store's client makes: the parameters it sent and the VersionId S3 answered with."""

    def __init__(self, s3: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        self.served: list[str | None] = []
        s3.meta.events.register("provide-client-params.s3.GetObject", self._sending)
        s3.meta.events.register("after-call.s3.GetObject", self._answered)

    def _sending(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(dict(params))

    def _answered(self, parsed: dict[str, Any], **_: Any) -> None:
        self.served.append(parsed.get("VersionId"))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (MODELS, ELSEWHERE):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _overwrite(s3: Any, data: bytes, bucket: str = MODELS) -> str:
    """What a principal with s3:PutObject could do after registration: a plain put under the same key."""
    return str(s3.put_object(Bucket=bucket, Key=KEY, Body=data)["VersionId"])


def test_put_returns_the_version_s3_stored_and_its_sha256(s3: Any) -> None:
    ref = ModelArtifactStore(MODELS, s3=s3).put(KEY, MODEL)
    assert ref.uri == f"s3://{MODELS}/{KEY}" and ref.sha256 == hashlib.sha256(MODEL).hexdigest()
    (stored,) = s3.list_object_versions(Bucket=MODELS, Prefix=KEY)["Versions"]
    assert ref.version_id is not None and ref.version_id == stored["VersionId"]


def test_a_key_written_again_with_the_same_bytes_still_serves_the_recorded_version(s3: Any) -> None:
    store = ModelArtifactStore(MODELS, s3=s3)
    ref = store.put(KEY, MODEL)
    newer = _overwrite(s3, MODEL)
    calls = GetObjectCalls(s3)

    assert store.get_verified(*ref) == MODEL
    assert calls.sent[0]["VersionId"] == ref.version_id
    assert calls.served == [ref.version_id] and newer != ref.version_id


def test_a_key_written_again_with_other_bytes_never_serves_them(s3: Any) -> None:
    store = ModelArtifactStore(MODELS, s3=s3)
    ref = store.put(KEY, MODEL)
    _overwrite(s3, b"a model someone else trained")
    calls = GetObjectCalls(s3)

    assert store.get_verified(*ref) == MODEL  # the version that was hashed, not the key's newest
    assert calls.served == [ref.version_id]


def test_an_item_registered_without_a_version_is_still_read_by_key_and_checked(s3: Any) -> None:
    store = ModelArtifactStore(MODELS, s3=s3)
    ref = store.put(KEY, MODEL)
    assert store.get_verified(ref.uri, ref.sha256) == MODEL  # items written before versions were recorded
    _overwrite(s3, b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not match the recorded"):
        store.get_verified(ref.uri, ref.sha256)


def test_a_uri_naming_another_bucket_is_refused_before_any_read(s3: Any) -> None:
    # The other bucket holds the very bytes the record's sha256 names: the sha256 check alone would pass.
    planted = _overwrite(s3, MODEL, bucket=ELSEWHERE)
    store = ModelArtifactStore(MODELS, s3=s3)
    calls = GetObjectCalls(s3)
    for version_id in (planted, None):
        with pytest.raises(ForeignArtifactError, match=f"not in the models bucket {MODELS}"):
            store.get_verified(f"s3://{ELSEWHERE}/{KEY}", hashlib.sha256(MODEL).hexdigest(), version_id)
    assert calls.sent == []
    assert issubclass(ForeignArtifactError, ArtifactIntegrityError)  # refused wherever tampering is
