"""The e2e tier drives a running stack over HTTP, as a user would.

By default it starts the local cloud in its own process (what `make run` starts). With AWS_SAM_STACK_NAME set
it uses that deployed stack instead: the API URL comes from the stack's outputs, and requests are signed
with SigV4 from the caller's AWS credentials (the API requires IAM authorization)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import TEST_TRAINING_SETTINGS, free_port

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    api_url: str
    outputs: dict[str, str]
    aws_endpoint: str | None  # None: real AWS
    session: Any = field(default_factory=requests.Session)
    environment: dict[str, str] = field(default_factory=dict)

    def aws_cli(self, *args: str) -> str:
        command = [str(Path(sys.executable).parent / "aws"), *args, "--output", "json"]
        if self.aws_endpoint:
            command += ["--endpoint-url", self.aws_endpoint]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **self.environment})
        assert done.returncode == 0, done.stderr
        return done.stdout


def _deployed(stack_name: str) -> Stack:
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = boto3.session.Session()
    described = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    credentials = session.get_credentials()

    class SignedSession(requests.Session):
        def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            body = kwargs.pop("data", None)
            if "json" in kwargs:
                import json

                body = json.dumps(kwargs.pop("json"))
                kwargs.setdefault("headers", {})["content-type"] = "application/json"
            prepared = requests.Request(method, url, params=kwargs.pop("params", None)).prepare()
            aws_request = AWSRequest(method=method, url=prepared.url, data=body,
                                     headers=kwargs.get("headers") or {})
            SigV4Auth(credentials, "execute-api", session.region_name).add_auth(aws_request)
            kwargs["headers"] = dict(aws_request.headers)
            return super().request(method, str(prepared.url), data=body, **kwargs)

    return Stack(api_url=outputs["ApiUrl"].rstrip("/"), outputs=outputs, aws_endpoint=None,
                 session=SignedSession())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack_name = os.environ.get("AWS_SAM_STACK_NAME")
    if stack_name:
        yield _deployed(stack_name)
        return

    aws_port, api_port = free_port(), free_port()
    state_dir = tmp_path_factory.mktemp("localcloud")
    log = (state_dir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "--aws-port", str(aws_port), "--api-port", str(api_port),
         "--machines", "2", "--days", "30", "--state-dir", str(state_dir),
         *(f"--function-env=TrainingFunction:{name}={value}" for name, value in TEST_TRAINING_SETTINGS.items())],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 120
        while "modelforge is running" not in (state_dir / "server.log").read_text():
            assert process.poll() is None, (state_dir / "server.log").read_text()
            assert time.monotonic() < deadline, "the local cloud did not start in 120 s"
            time.sleep(0.2)
        from localcloud.template import resolve_stack

        outputs = {**resolve_stack().outputs, "ApiUrl": api_url}
        environment = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}
        yield Stack(api_url=api_url, outputs=outputs, aws_endpoint=f"http://127.0.0.1:{aws_port}",
                    environment=environment)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
