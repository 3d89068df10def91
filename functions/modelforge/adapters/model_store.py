"""Model artifacts in the models bucket: XGBoost's own format, addressed by S3 URI, guarded by sha256."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from botocore.exceptions import ClientError

from modelforge.adapters.aws import client
from modelforge.errors import ArtifactIntegrityError
from modelforge.observability import logger


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

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> tuple[str, str]:
        """Writes a new object, never overwriting one (If-None-Match). Returns (s3 URI, sha256 hex)."""
        digest = hashlib.sha256(data)
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType=content_type,
            ChecksumSHA256=base64.b64encode(digest.digest()).decode(),  # S3 verifies the upload itself
            Metadata={"sha256": digest.hexdigest()},
            IfNoneMatch="*",
        )
        return f"s3://{self._bucket}/{key}", digest.hexdigest()

    def get_verified(self, uri: str, expected_sha256: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        data: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        actual = sha256_hex(data)
        if actual != expected_sha256:
            raise ArtifactIntegrityError(f"{uri}: sha256 {actual} does not match the recorded {expected_sha256}")
        return data

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except ClientError:
            # The caller is already handling the original failure; say loudly what may be left behind.
            logger.exception("could not delete an artifact whose registration failed", extra={"uri": uri})
            raise
