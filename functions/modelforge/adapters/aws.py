"""boto3 clients, created once per process and reused across warm invocations."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode retries throttling and 5xx with backoff; the state machine retries what is left.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)


@cache
def resource(service: str) -> Any:
    return boto3.session.Session().resource(service, config=_CONFIG)


@cache
def presigning_client(service: str) -> Any:
    """A client whose presigned URLs are signed with SigV4: botocore may otherwise sign them with SigV2, which
    S3 refuses for KMS-encrypted objects and in newer regions."""
    return boto3.session.Session().client(service, config=_CONFIG.merge(Config(signature_version="s3v4")))
