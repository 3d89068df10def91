"""The `modelforge` command against a fake HTTP API (an in-process http.server that records what it is sent
and answers with the contracts' bodies): the runbook commands whose routes another branch builds
(POST /retrain, GET /retrains/{id}, GET /triggers, POST /triggers/resolve), drift, exit statuses and the
API's error messages; SigV4 signing checked against botocore's own signer; predict's chunks checked against
the features of the whole file."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from modelforge.domain.features import FeatureConfig, build_features, feature_names
from modelforge_cli.chunks import model_window_minutes, plan_chunks
from modelforge_cli.client import ApiClient, Auth
from modelforge_cli.main import main

TRIGGER = {"trigger_id": "t-1", "run_id": "run-1", "model_name": "PUMP-1#status", "machine_name": "PUMP-1",
           "indicator": "status", "reason": "drift", "figures": {"psi": 0.4}, "status": "failed",
           "process_id": "p-1", "error_message": "InsufficientDataError: too few rows", "created_at":
           "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:05:00Z", "resolved_by": None,
           "resolution_reason": None}


class FakeApi:
    """Routes (method, path) -> a function of (query, body) returning (status, body); records each request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[dict[str, list[str]], Any], tuple[int, Any]]] = {}
        self.requests: list[dict[str, Any]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw) if raw else None
                api.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                     "body": body, "raw": raw, "headers": dict(self.headers.items()),
                                     "target": self.path})
                route = api.routes.get((self.command, url.path))
                status, answer = route(parse_qs(url.query), body) if route else (404, {"statusCode": 404,
                                                                                      "detail": "Not found"})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    fake = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(url: str, *args: str) -> int:
    try:
        main(["--api-url", url, *args])
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_retrain_one_model_sends_the_contract_body_and_prints_the_run(api: tuple[FakeApi, str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    fake.routes[("POST", "/retrain")] = lambda q, b: (202, {"run_id": "run-1", "execution_arn": "arn:x"})
    assert run(url, "retrain", "PUMP-1/health", "--force", "--json") == 0
    assert fake.requests[-1]["body"] == {"machine_name": "PUMP-1", "indicator": "health", "force": True}
    assert json.loads(capsys.readouterr().out) == {"run_id": "run-1", "execution_arn": "arn:x"}
    assert run(url, "retrain", "all") == 0
    assert fake.requests[-1]["body"] == {"all": True}


def test_retrain_wait_polls_the_run_until_it_ends_and_a_failed_run_exits_1(
        api: tuple[FakeApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    reads = iter(["running", "running", "failed"])
    fake.routes[("POST", "/retrain")] = lambda q, b: (202, {"run_id": "run-1", "execution_arn": "arn:x"})
    fake.routes[("GET", "/retrains/run-1")] = lambda q, b: (200, {
        "run_id": "run-1", "status": next(reads), "summary": {"failed": 1}, "triggers": [TRIGGER]})
    assert run(url, "retrain", "PUMP-1", "--wait", "--poll", "0.2") == 1
    assert [r["path"] for r in fake.requests].count("/retrains/run-1") == 3
    out = capsys.readouterr().out
    assert "failed" in out and "t-1" in out


def test_triggers_lists_with_the_filters_given(api: tuple[FakeApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    fake.routes[("GET", "/triggers")] = lambda q, b: (200, {"triggers": [TRIGGER]})
    assert run(url, "triggers", "--status", "failed", "--machine", "PUMP-1", "--json") == 0
    assert fake.requests[-1]["query"] == {"status": ["failed"], "machine_name": ["PUMP-1"]}
    assert json.loads(capsys.readouterr().out)["triggers"][0]["trigger_id"] == "t-1"
    assert run(url, "triggers") == 0
    assert "InsufficientDataError" in capsys.readouterr().out


def test_triggers_resolve_sends_ids_or_all_failed_with_the_reason(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    resolved = {**TRIGGER, "status": "resolved_manually", "resolved_by": "me", "resolution_reason": "fixed"}
    fake.routes[("POST", "/triggers/resolve")] = lambda q, b: (200, {"resolved": [resolved]})
    assert run(url, "triggers", "resolve", "t-1", "t-2", "--reason", "fixed by hand") == 0
    assert fake.requests[-1]["body"] == {"trigger_ids": ["t-1", "t-2"], "reason": "fixed by hand"}
    assert run(url, "triggers", "resolve", "--all-failed", "--machine", "PUMP-1", "--reason", "data fixed") == 0
    assert fake.requests[-1]["body"] == {"all_failed": True, "machine_name": "PUMP-1", "reason": "data fixed"}
    sent = len(fake.requests)
    assert run(url, "triggers", "resolve", "t-1") == 2  # no reason: refused before anything is sent
    assert run(url, "triggers", "resolve", "t-1", "--all-failed", "--reason", "both") == 2
    assert len(fake.requests) == sent


def test_an_api_error_reaches_the_user_as_the_api_said_it_with_exit_2(
        api: tuple[FakeApi, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    detail = [{"loc": ["body", "reason"], "msg": "String should have at least 3 characters", "type": "too_short"}]
    fake.routes[("POST", "/triggers/resolve")] = lambda q, b: (422, {"statusCode": 422, "detail": detail})
    assert run(url, "triggers", "resolve", "--all-failed", "--reason", "x") == 2
    assert "body.reason: String should have at least 3 characters" in capsys.readouterr().err
    fake.routes[("GET", "/triggers")] = lambda q, b: (503, {"statusCode": 503, "detail": "down"})
    assert run(url, "triggers") == 1


def test_an_unreachable_api_exits_1_saying_where_it_looked(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("http://127.0.0.1:9", "machines") == 1
    assert "cannot reach the API at http://127.0.0.1:9" in capsys.readouterr().err


def test_drift_shows_every_feature_the_last_check_holds(api: tuple[FakeApi, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = api
    check = {"checked_at": "2026-01-02T00:00:00Z", "drifted": True, "max_psi": 0.41,
             "features": {"Motor_Current_A": {"psi": 0.41, "drifted": True},
                          "Flow_m3_h": {"psi": 0.02, "drifted": False}}}
    fake.routes[("GET", "/models/PUMP-1/health")] = lambda q, b: (200, {"champion": {}, "last_drift_check": check})
    assert run(url, "drift", "PUMP-1#health") == 0
    out = capsys.readouterr().out
    assert "Motor_Current_A" in out and "Flow_m3_h" in out and "0.41" in out
    assert run(url, "drift", "PUMP-1", "--indicator", "health", "--json") == 0
    assert json.loads(capsys.readouterr().out) == check


def test_train_sends_compute_only_when_given(api: tuple[FakeApi, str]) -> None:
    fake, url = api
    fake.routes[("POST", "/train")] = lambda q, b: (202, {"process_id": "p-1", "status": "pending"})
    assert run(url, "train", "PUMP-1", "--option", "label_window_minutes=30", "--fleet", "A,B") == 0
    assert fake.requests[-1]["body"] == {"indicator": "status", "machine_name": "PUMP-1", "machine_names": ["A", "B"],
                                         "options": {"label_window_minutes": 30}}
    assert run(url, "train", "PUMP-1", "--compute", "batch", "-i", "health") == 0
    assert fake.requests[-1]["body"] == {"indicator": "health", "machine_name": "PUMP-1", "compute": "batch"}


def test_every_command_has_help_that_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    commands = ["train", "status", "jobs", "machines", "models", "promote", "report", "predict", "retrain",
                "validate", "triggers", "drift"]
    assert run("http://unused", "--help") == 0
    listing = capsys.readouterr().out
    for command in [*commands, "import"]:
        assert command in listing
    for command in [*commands, "triggers resolve"]:
        assert run("http://unused", *command.split(), "--help") == 0
        assert "Usage: modelforge " + command in " ".join(capsys.readouterr().out.split())


def test_sigv4_signature_is_the_one_botocore_computes_for_the_request_received(api: tuple[FakeApi, str]) -> None:
    """The request as it arrived (method, path, query, body and the headers it says it signed), signed again by
    botocore's SigV4Auth at the same instant, gives the same Authorization header."""
    fake, url = api
    fake.routes[("POST", "/models/PUMP-1/status/promote")] = lambda q, b: (200, {"ok": True})
    fake.routes[("GET", "/jobs")] = lambda q, b: (200, {"jobs": []})
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    client = ApiClient(url, Auth(mode="iam", region="eu-west-1", _credentials=credentials))
    client.post("/models/PUMP-1/status/promote", {"version": "v", "reason": "ünïcode reason"})
    client.get("/jobs", {"machine_name": "PUMP-1", "status": "failed", "limit": 5})
    for received in fake.requests:
        authorization = received["headers"]["Authorization"]
        signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        assert {"host", "x-amz-date", "x-amz-security-token"} <= set(signed)
        headers = {name: value for name, value in received["headers"].items() if name.lower() in signed}
        instant = datetime.strptime(received["headers"]["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expected = AWSRequest(method=received["method"], url=url + received["target"], data=received["raw"],
                              headers={k: v for k, v in headers.items() if k.lower() != "x-amz-date"})
        with mock.patch("botocore.auth.get_current_datetime", return_value=instant):
            SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(expected)
        assert expected.headers["Authorization"] == authorization
        assert "Credential=AKIDEXAMPLE/" + instant.strftime("%Y%m%d") + "/eu-west-1/execute-api/aws4_request" in (
            authorization)


def test_a_jwt_token_is_sent_as_a_bearer_token(api: tuple[FakeApi, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = api
    fake.routes[("GET", "/machines")] = lambda q, b: (200, {"machines": []})
    monkeypatch.setenv("MODELFORGE_TOKEN", "abc.def.ghi")
    assert run(url, "machines") == 0
    assert fake.requests[-1]["headers"]["Authorization"] == "Bearer abc.def.ghi"


# ---------------------------------------------------------------- predict's chunks


def _telemetry(rows: int, seed: int = 0, gaps: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 2, 7], size=rows) if gaps else np.ones(rows, dtype=int)
    stamps = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(steps), unit="min")
    return pd.DataFrame({"timestamp": stamps, "a": rng.normal(size=rows).cumsum(), "b": rng.normal(size=rows)})


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(windows_minutes=(5, 240), statistics=("mean",
                                    "std", "slope"), trend_window_minutes=30)])
def test_chunks_with_their_context_give_every_row_the_features_of_the_whole_file(config: FeatureConfig) -> None:
    frame = _telemetry(3500)
    names = feature_names(["a", "b"], config)
    sensors, window = model_window_minutes(names)
    assert sensors == ("a", "b") and window == max(*config.windows_minutes, config.trend_window_minutes or 0)
    whole, _ = build_features(frame, sensors, config)
    rows: list[np.ndarray] = []
    chunks = list(plan_chunks(frame["timestamp"], len(frame), window, limit=1000))
    for chunk in chunks:
        assert chunk.stop - chunk.start <= 1000 and chunk.context >= 0
        part, _ = build_features(frame.iloc[chunk.start:chunk.stop].reset_index(drop=True), sensors, config)
        rows.append(part[chunk.context:])
    assert [c.first_predicted for c in chunks] == [0, *[c.stop for c in chunks[:-1]]]
    assert chunks[-1].stop == len(frame)
    np.testing.assert_allclose(np.concatenate(rows), whole, rtol=1e-4, atol=1e-4)


def test_without_timestamps_the_context_is_the_window_in_rows() -> None:
    chunks = list(plan_chunks(None, 2500, 60, limit=1000))
    assert [(c.start, c.first_predicted, c.stop) for c in chunks] == [(0, 0, 1000), (940, 1000, 1940),
                                                                       (1880, 1940, 2500)]


def test_a_window_holding_more_rows_than_a_call_is_refused(tmp_path: Path) -> None:
    dense = pd.Series(pd.date_range("2025-01-01", periods=3000, freq="s", tz="UTC"))
    with pytest.raises(ValueError, match="more than one call"):
        list(plan_chunks(dense, 3000, 60, limit=1000))


def test_stack_reads_the_api_url_from_the_stack_outputs_and_signs_with_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    from modelforge_cli.client import stack_api_url
    from modelforge_cli.main import Settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("MODELFORGE_API_URL", raising=False)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"ApiUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"}}}
    with mock_aws():
        import boto3

        boto3.client("cloudformation", region_name="eu-west-1").create_stack(StackName="mf",
                                                                             TemplateBody=json.dumps(template))
        assert stack_api_url("mf", "eu-west-1") == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
        client = Settings(api_url=None, stack="mf", token=None, auth="auto", region="eu-west-1").client()
        assert client.base_url == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
        assert client.auth.mode == "iam"
        with pytest.raises(Exception, match="cannot read stack 'other'"):
            stack_api_url("other", "eu-west-1")
    local = Settings(api_url=None, stack=None, token=None, auth="auto", region=None).client()
    assert (local.base_url, local.auth.mode) == ("http://127.0.0.1:3000", "none")
