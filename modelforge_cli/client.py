"""The HTTP client the `modelforge` command talks through: where the API is, how requests are authorized
(SigV4 for a stack deployed with ApiAuth=IAM, a bearer token for ApiAuth=JWT, nothing for the local cloud),
and API errors turned into :class:`ApiError` with the API's own words (field and reason)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import requests

LOCAL_API_URL = "http://127.0.0.1:3000"
# What a call may take: the API's own limit is API Gateway's 30 s (a cold training-image function included).
TIMEOUT_SECONDS = 60

# Exit statuses (the same for every command): 2 bad input, 1 a failed job or an unreachable/failing service.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class CliError(Exception):
    """Something the user is told in one message, and the exit status that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The API answered 4xx/5xx: its message(s) as it said them. 4xx is bad input (exit 2) but for 429 (too
    many jobs in flight: retry later, exit 1); 5xx is a failing service (exit 1)."""

    def __init__(self, status: int, detail: Any, retry_after: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        bad_input = 400 <= status < 500 and status != 429
        super().__init__(f"HTTP {status}: " + "; ".join(describe_detail(detail)),
                         EXIT_BAD_INPUT if bad_input else EXIT_FAILED)


def describe_detail(detail: Any) -> list[str]:
    """The API's error body's ``detail`` as lines: ``body.machine_name: no processed data for ...``."""
    if isinstance(detail, list):
        lines = []
        for entry in detail:
            if isinstance(entry, dict):
                where = ".".join(str(part) for part in entry.get("loc", []))
                lines.append(f"{where}: {entry.get('msg', entry)}" if where else str(entry.get("msg", entry)))
            else:
                lines.append(str(entry))
        return lines or ["(no detail)"]
    return [str(detail)]


@dataclass
class Auth:
    """How requests are authorized. ``mode``: "none" (the local cloud), "iam" (SigV4 with the caller's AWS
    credentials, service execute-api), "jwt" (``Authorization: Bearer <token>``)."""

    mode: str = "none"
    token: str | None = None
    region: str | None = None
    _credentials: Any = field(default=None, repr=False)

    def headers_for(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        if self.mode == "jwt":
            if not self.token:
                raise CliError("--auth jwt needs a token: --token or MODELFORGE_TOKEN", EXIT_BAD_INPUT)
            return {**headers, "Authorization": f"Bearer {self.token}"}
        if self.mode == "iam":
            return sigv4_headers(method, url, body, headers, region=self.region, credentials=self._credentials)
        return headers


def sigv4_headers(method: str, url: str, body: bytes | None, headers: dict[str, str], *, region: str | None,
                  credentials: Any = None) -> dict[str, str]:
    """The request's headers with botocore's SigV4 signature for API Gateway (``execute-api``), from the
    usual AWS configuration (environment, profile, SSO, instance role) unless credentials are given."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = boto3.session.Session(region_name=region)
    credentials = credentials or session.get_credentials()
    if credentials is None:
        raise CliError("no AWS credentials for SigV4 (ApiAuth=IAM): configure them as for the AWS CLI")
    signing_region = region or session.region_name
    if not signing_region:
        raise CliError("no AWS region for SigV4: pass --region or set AWS_REGION", EXIT_BAD_INPUT)
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials, "execute-api", signing_region).add_auth(request)
    return dict(request.headers.items())


def stack_api_url(stack_name: str, region: str | None = None) -> str:
    """The ``ApiUrl`` output of a deployed CloudFormation stack."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = boto3.session.Session(region_name=region).client("cloudformation").describe_stacks(
            StackName=stack_name)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        raise CliError(f"cannot read stack {stack_name!r}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise CliError(f"stack {stack_name!r} has no ApiUrl output", EXIT_BAD_INPUT)
    return str(outputs["ApiUrl"]).rstrip("/")


class ApiClient:
    def __init__(self, base_url: str, auth: Auth | None = None, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth or Auth()
        self.session = session or requests.Session()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, body=body, headers=headers)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = requests.Request(method, self.base_url + path, params=query).prepare().url or ""
        data = json.dumps(body).encode() if body is not None else None
        sent = {"accept": "application/json", **({"content-type": "application/json"} if data else {}),
                **(headers or {})}
        sent = self.auth.headers_for(method, url, data, sent)
        try:
            response = self.session.request(method, url, data=data, headers=sent, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise CliError(f"cannot reach the API at {self.base_url}: {error.__class__.__name__} "
                           "(is `make run` running? --api-url, MODELFORGE_API_URL or --stack point elsewhere)"
                           ) from error
        return _answer(response)


def _answer(response: requests.Response) -> Any:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 400:
        detail = payload.get("detail", payload.get("message", payload)) if isinstance(payload, dict) else (
            response.text[:500] or response.reason)
        raise ApiError(response.status_code, detail, response.headers.get("Retry-After"))
    return payload


def env_or(value: str | None, variable: str, default: str | None = None) -> str | None:
    return value if value else os.environ.get(variable) or default
