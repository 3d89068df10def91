"""Model artifacts in the models bucket: XGBoost's own format, addressed by S3 URI and object version, guarded
by sha256.

The sha256 alone proves consistency (these bytes match the record), not origin. Origin comes from two more
checks: the URI must name this store's bucket (the models bucket, which only the training role writes), and
the read is of the exact object version training wrote and hashed, so bytes written later under the same key
are never the ones served."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from botocore.exceptions import ClientError

from modelforge.adapters.aws import client, presigning_client
from modelforge.errors import ArtifactIntegrityError, ForeignArtifactError
from modelforge.observability import logger
from modelforge.registry import ArtifactRef, ObjectVersion


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3:// object URI: {uri}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


class ModelArtifactStore:
    def __init__(self, bucket: str, s3: Any | None = None) -> None:
        self._bucket = bucket
        self._s3 = s3 if s3 is not None else client("s3")
        self._injected = s3 is not None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactRef:
        """Writes a new object, never overwriting one (If-None-Match). Returns its URI, sha256 hex and the
        VersionId S3 gave it (None only in a bucket without versioning, e.g. a benchmark's), which the registry
        records so that reads fetch this very version."""
        digest = hashlib.sha256(data)
        written = self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType=content_type,
            ChecksumSHA256=base64.b64encode(digest.digest()).decode(),  # S3 verifies the upload itself
            Metadata={"sha256": digest.hexdigest()},
            IfNoneMatch="*",
        )
        return ArtifactRef(self._uri(key), digest.hexdigest(), written.get("VersionId"))

    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        """The bytes of ``version_id`` of the object (the current version when None: items registered before
        versions were recorded), if they hash to ``expected_sha256``. A URI outside the models bucket is refused
        before anything is read (ForeignArtifactError)."""
        bucket, key = self._own(uri)  # refused unread
        version = {"VersionId": version_id} if version_id else {}
        data: bytes = self._s3.get_object(Bucket=bucket, Key=key, **version)["Body"].read()
        actual = sha256_hex(data)
        if actual != expected_sha256:
            raise ArtifactIntegrityError(f"{uri}: sha256 {actual} does not match the recorded {expected_sha256}")
        return data

    def delete(self, uri: str, version_id: str | None = None) -> None:
        """Removes what a failed registration wrote. With the version put returned (always, in the versioned
        models bucket) the bytes are gone for good; a plain DeleteObject would only hide them behind a delete
        marker. Without one (an unversioned bucket) the key is deleted."""
        bucket, key = self._own(uri)
        version = {"VersionId": version_id} if version_id else {}
        try:
            self._s3.delete_object(Bucket=bucket, Key=key, **version)
        except ClientError:
            # The caller is already handling the original failure; say loudly what may be left behind.
            logger.exception("could not delete an artifact whose registration failed",
                             extra={"uri": uri, "version_id": version_id})
            raise

    def versions(self, prefix: str) -> list[ObjectVersion]:
        """Every object version and delete marker under ``prefix`` (ListObjectVersions, every page)."""
        found: list[ObjectVersion] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=prefix):
            found += [ObjectVersion(self._uri(v["Key"]), v["VersionId"]) for v in page.get("Versions", [])]
            found += [ObjectVersion(self._uri(m["Key"]), m["VersionId"], delete_marker=True)
                      for m in page.get("DeleteMarkers", [])]
        return found

    def delete_version(self, uri: str, version_id: str) -> None:
        """Removes one object version or delete marker for good (DeleteObject with VersionId)."""
        bucket, key = self._own(uri)
        self._s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)

    def presigned_get(self, uri: str, version_id: str | None = None, expires_seconds: int = 300) -> str:
        """A short-lived HTTPS GET of a stored object (the recorded version), so a client fetches a report from
        S3 directly: the bytes never pass through a Lambda. Signed with this function's credentials, so it
        opens only what the function itself may read (``model/*``), and never another bucket's object."""
        bucket, key = self._own(uri)
        params = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        return str(self._signer().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_seconds))

    def _signer(self) -> Any:
        """The process's SigV4 presigning client; an injected client (tests) signs as it is."""
        return self._s3 if self._injected else presigning_client("s3")

    def _uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def _own(self, uri: str) -> tuple[str, str]:
        """Bucket and key of a URI in the models bucket; this store deletes nothing anywhere else."""
        bucket, key = split_s3_uri(uri)
        if bucket != self._bucket:
            raise ForeignArtifactError(f"{uri}: not in the models bucket {self._bucket}")
        return bucket, key
