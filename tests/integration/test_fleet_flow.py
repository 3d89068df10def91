"""Issue 6 on the local cloud: run-to-failure engines imported with their recorded failures, a fleet model
trained through POST /train, registered under the fleet's name and served by POST /predict; a job whose
failures should come from records that do not exist fails with a message that says so.

The tests run in any order. The drift test rewrites telemetry and retrains (through the retraining state
machine, the only path that starts retrains), so it has a fleet of its own: the same engines imported a second
time under other names (``drifting_engines``), trained as DRIFT_FLEET."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localcloud.cloud import LocalCloud
from localcloud.demo import data_location
from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.domain.importing import ImportedData, cmapss_mapping, read_cmapss, to_contract
from modelforge.importer import import_dataset
from modelforge.jobs import Indicator
from tests.conftest import one_boto3_session, poll_pauses, wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud

# Engines 1-10 of NASA C-MAPSS train_FD001 (public domain, rows copied verbatim), each run to failure at its
# last cycle: ten engines, so that whole engines can be held out for testing and for validation.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLES = (FIXTURES / "cmapss_fd001_sample.txt", FIXTURES / "cmapss_fd001_engines_4_10.txt")
FLEET = "FD001-SAMPLE"
ENGINES = [f"FD001-{i:03d}" for i in range(1, 11)]
DRIFT_FLEET = "FD001D-SAMPLE"
DRIFTING_ENGINES = [f"FD001D-{i:03d}" for i in range(1, 11)]  # the same engines, for the drift test only
OPTIONS = {"label_window_minutes": 300, "health_horizon_minutes": 1250, "holdout": "machines",
           "feature_windows_minutes": [50, 100, 300], "feature_statistics": ["mean", "std", "slope"]}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    # The retraining items check the whole 30 days, as the by-hand checks below ask for (window_days).
    local = start_cloud(tmp_path_factory.mktemp("fleet"),
                        environment_overrides={"RetrainItemFunction": {"DRIFT_WINDOW_DAYS": "30"}})
    try:
        load_machines(local)
        bucket, prefix = data_location(local.stack)
        with one_boto3_session():
            for imported in (engines(), drifting_engines()):
                import_dataset(imported, TelemetryStore(bucket, prefix), FailureEventStore(bucket))
        yield local
    finally:
        local.stop()


@functools.cache
def engines() -> ImportedData:
    """Read once (the tests only read it)."""
    import pandas as pd

    return to_contract(pd.concat([read_cmapss(path) for path in SAMPLES], ignore_index=True), cmapss_mapping("FD001"))


@functools.cache
def drifting_engines() -> ImportedData:
    """engines() under the names in DRIFTING_ENGINES, with their failure records."""
    original = engines()
    renamed = dict(zip(ENGINES, DRIFTING_ENGINES, strict=True))
    return ImportedData(telemetry={renamed[name]: frame for name, frame in original.telemetry.items()},
                        events=original.events.assign(machine_name=original.events["machine_name"].map(renamed)))


def fleet_body(**fields: Any) -> dict[str, Any]:
    return {"indicator": "status", "machine_name": FLEET, "machine_names": sorted(engines().telemetry),
            "failure_events": "records", "options": OPTIONS, **fields}


def _train(cloud: LocalCloud, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{cloud.api_url}/train", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return wait_for_job(cloud.api_url, answer.json()["process_id"], timeout=300)


@pytest.fixture(scope="module")
def fleet_job(cloud: LocalCloud) -> dict[str, Any]:
    return _train(cloud, fleet_body())


@pytest.fixture(scope="module")
def drifting_fleet_job(cloud: LocalCloud) -> dict[str, Any]:
    job = _train(cloud, fleet_body(machine_name=DRIFT_FLEET, machine_names=DRIFTING_ENGINES))
    assert job["status"] == "completed", job["error_message"]
    assert job["gate_decision"] == "promoted", job["gate_reason"]
    return job


@dataclasses.dataclass
class HeldTrainings:
    """TrainingFunction invocations that arrived while held: they start once ``release`` is set."""

    arrived: threading.Event = dataclasses.field(default_factory=threading.Event)
    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    process_ids: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def trainings_held(cloud: LocalCloud) -> Iterator[HeldTrainings]:
    """Holds every training invocation (the state machine's TrainModel) at the function's door until the block
    ends, so what a test checks "before the retrained model is gated" is checked before, not raced."""
    runtime = cloud.runtime
    assert runtime is not None
    invoke = runtime.invoke
    training = cloud.stack.functions["TrainingFunction"].name
    held = HeldTrainings()

    def holding(name_or_arn: str, payload: bytes) -> Any:
        if runtime.pool(name_or_arn).spec.name == training:
            held.process_ids.append(json.loads(payload)["process_id"])
            held.arrived.set()
            held.release.wait(timeout=300)
        return invoke(name_or_arn, payload)

    runtime.invoke = holding  # type: ignore[method-assign]
    try:
        yield held
    finally:
        held.release.set()
        del runtime.invoke  # the class's method again


def test_a_fleet_model_trains_on_recorded_failures_and_says_so(cloud: LocalCloud, fleet_job: dict[str, Any]) -> None:
    assert fleet_job["status"] == "completed", fleet_job["error_message"]
    assert fleet_job["machine_name"] == FLEET
    assert fleet_job["machine_names"] == [f"FD001-{i:03d}" for i in range(1, 11)] == ENGINES
    assert fleet_job["failure_events"] == "records"
    assert fleet_job["options"]["holdout"] == "machines"
    assert fleet_job["gate_decision"] == "promoted", fleet_job["gate_reason"]
    champion = requests.get(f"{cloud.api_url}/models/{FLEET}/status", timeout=30).json()["champion"]
    assert champion["version"] == fleet_job["model_id"]


def test_the_registry_records_the_fleet_s_machines_and_event_source(cloud: LocalCloud,
                                                                   fleet_job: dict[str, Any]) -> None:
    from modelforge.adapters.model_registry import ModelRegistry
    from modelforge.registry import ModelName

    registry = ModelRegistry(cloud.stack.outputs["ModelsTableName"])
    version = registry.get_version(ModelName(FLEET, Indicator.STATUS), fleet_job["model_id"])
    assert version is not None and version.data is not None
    assert version.machine_names == [f"FD001-{i:03d}" for i in range(1, 11)] and version.is_fleet
    assert version.failure_events == "records"
    assert version.data["holdout"] == "machines" and len(version.data["machines_test"]) == 2
    assert version.data["failure_events"] == 10
    assert "s2__slope_300min" in version.feature_names


def test_predict_serves_the_fleet_model_for_one_engine_s_records(cloud: LocalCloud,
                                                                 fleet_job: dict[str, Any]) -> None:
    frame = engines().telemetry["FD001-002"]
    records = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dict(orient="records")
    answer = requests.post(f"{cloud.api_url}/predict", timeout=60,
                           json={"machine_name": FLEET, "indicator": "status", "records": records})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == fleet_job["model_id"]
    predictions = body["predictions"]
    assert len(predictions) == len(records)
    # The engine's own history: healthy at the start, failing at the end.
    assert predictions[0]["prediction"] == 0.0 and predictions[-1]["prediction"] == 1.0


def test_recorded_failures_that_do_not_exist_fail_the_job_with_a_reason(cloud: LocalCloud) -> None:
    body = {"indicator": "status", "machine_name": TRAINABLE_MACHINE, "failure_events": "records"}
    answer = requests.post(f"{cloud.api_url}/train", json=body, timeout=60)
    job = wait_for_job(cloud.api_url, answer.json()["process_id"], timeout=300)
    assert job["status"] == "failed"
    assert "NoFailureEventsError" in job["error_message"]
    assert "failure-events dataset records no failure" in job["error_message"]


@pytest.mark.parametrize(("fields", "field"), [
    ({"machine_name": TRAINABLE_MACHINE}, "machine_name"),  # a fleet may not take a machine's name
    ({"machine_names": ["FD001-001", "FD001-404"]}, "machine_names"),
    ({"machine_names": ["FD001-001", "FD001-001"]}, "machine_names"),
])
def test_a_bad_fleet_is_refused_with_the_field_and_creates_no_job(cloud: LocalCloud, fields: dict[str, Any],
                                                                  field: str) -> None:
    before = len(requests.get(f"{cloud.api_url}/jobs", params={"limit": 100}, timeout=30).json()["jobs"])
    answer = requests.post(f"{cloud.api_url}/train", json=fleet_body(**fields), timeout=60)
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    after = len(requests.get(f"{cloud.api_url}/jobs", params={"limit": 100}, timeout=30).json()["jobs"])
    assert after == before


def wait_for_summary(cloud: LocalCloud, run_id: str, timeout: float = 300) -> dict[str, Any]:
    """The run once every item decided (its summary written). Its status stays running until the retrains it
    started end, which a held training never does inside trainings_held."""
    deadline = time.monotonic() + timeout
    pauses = poll_pauses()
    while not (run := requests.get(f"{cloud.api_url}/retrains/{run_id}", timeout=30).json()).get("summary"):
        assert time.monotonic() < deadline, run
        time.sleep(next(pauses))
    return dict(run)


def invoke_drift(cloud: LocalCloud, payload: dict[str, Any]) -> dict[str, Any]:
    answer = cloud.client("lambda").invoke(FunctionName=cloud.stack.functions["DriftFunction"].name,
                                           Payload=json.dumps(payload).encode())
    body = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, body
    return dict(body)


@pytest.mark.timeout(900)  # the fleet's training, then a retraining run and the retrain's training, on 2 cores
def test_a_fleet_s_drift_check_reads_all_its_machines_and_retrains_it_on_drift(
        cloud: LocalCloud, drifting_fleet_job: dict[str, Any]) -> None:
    machines = DRIFTING_ENGINES
    unchanged = invoke_drift(cloud, {"machine_name": DRIFT_FLEET, "indicator": "status", "window_days": 30})
    assert unchanged["machines"] == machines and unchanged["version"] == drifting_fleet_job["model_id"]
    assert unchanged["status"] != "drift", unchanged
    assert "retrain_process_id" not in unchanged  # a by-hand check starts nothing

    assert unchanged["method"] == "two_sample" and unchanged["drift_share"] < 0.5

    bucket, prefix = data_location(cloud.stack)
    store = TelemetryStore(bucket, prefix)
    with one_boto3_session():
        for name, frame in drifting_engines().telemetry.items():  # the LPT outlet runs 40 degrees hotter than ever
            store.write(name, frame.assign(s4=frame["s4"] + 40))
    with trainings_held(cloud) as held:
        answer = requests.post(f"{cloud.api_url}/retrain", json={"machine_name": DRIFT_FLEET, "indicator": "status"},
                               timeout=30)
        assert answer.status_code == 202, answer.text
        run = wait_for_summary(cloud, answer.json()["run_id"])
        assert run["summary"]["by_decision"] == {"drift": 1}, run
        assert run["summary"]["by_outcome"] == {"started": 1}, run
        (trigger,) = run["triggers"]
        drifted = requests.get(f"{cloud.api_url}/models/{DRIFT_FLEET}/status", timeout=30).json()["last_drift_check"]
        # One sensor of 25 moves a few of the recipe's 275 features, under the drift share, but far past PSI's
        # threshold and its two-sample test: drift, named first.
        assert drifted["status"] == "drift" and drifted["drift_share"] < 0.5, drifted["drift_share"]
        assert drifted["machines"] == machines
        assert drifted["top_features"][0]["feature"].startswith("s4") and drifted["max_psi"] > 0.25
        assert drifted["features_drifted"] == sum(1 for f in drifted["features"] if f["drifted"])
        assert trigger["reason"] == "drift" and trigger["figures"]["max_psi"] == drifted["max_psi"], trigger
        # Until the retrained model has been trained and gated, the champion is the checked one: checked while
        # the retraining job's own training waits to start.
        assert held.arrived.wait(timeout=120), "the retraining job's training never started"
        assert held.process_ids == [trigger["trigger_id"]]  # the trigger id is the job's process_id
        shown = requests.get(f"{cloud.api_url}/models/{DRIFT_FLEET}/status", timeout=30).json()
        assert shown["champion"]["version"] == drifting_fleet_job["model_id"]
        assert shown["last_drift_check"]["status"] == "drift"
    retrain = wait_for_job(cloud.api_url, trigger["trigger_id"], timeout=300)
    assert retrain["machine_name"] == DRIFT_FLEET and retrain["machine_names"] == machines
    assert retrain["failure_events"] == "records" and retrain["options"]["holdout"] == "machines"
    assert retrain["status"] == "completed", retrain["error_message"]
    from modelforge.adapters.model_registry import ModelRegistry
    from modelforge.registry import ModelName

    registry = ModelRegistry(cloud.stack.outputs["ModelsTableName"])
    checked = registry.get_version(ModelName(DRIFT_FLEET, Indicator.STATUS), drifting_fleet_job["model_id"])
    assert checked is not None and checked.last_drift_check is not None
    assert checked.last_drift_check["status"] == "drift"
    assert trigger["trigger_id"] == retrain["process_id"]  # the trigger record names the job it started
