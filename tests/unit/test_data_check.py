"""POST /validate's checks (domain.data_check) and the API pieces the CLI reads: GET /status's steps from the
execution history, and the models API's presigned report_url."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from localcloud.demo_data import generate_machine_telemetry
from modelforge.adapters.executions import ExecutionHistory
from modelforge.domain.data_check import check_training_data
from modelforge.domain.pipeline import PipelineConfig, train_model
from modelforge.domain.search import SearchConfig
from modelforge.domain.telemetry import RPM_VARIATION
from modelforge.errors import InsufficientDataError, InvalidRequestError, NoFailureEventsError
from modelforge.jobs import Indicator
from modelforge.logic import validate as validate_logic
from modelforge.logic.models_api import with_report_url
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineSummary, ModelVersionSummary, ValidateRequest

CONFIG = PipelineConfig(search=SearchConfig(budget=1, max_rounds=20, nthread=1))


@pytest.fixture(scope="module")
def telemetry() -> Any:
    return generate_machine_telemetry("PUMP-1", days=30, seed=1).telemetry


def test_good_data_would_succeed_and_says_what_it_holds(telemetry: Any) -> None:
    broken = telemetry.copy()
    broken.loc[broken.index[:7], "timestamp"] = None  # missing key
    broken.loc[broken.index[10:13], "Motor_Temperature_C"] = 10_000.0  # impossible
    check = check_training_data(broken, machine_name="PUMP-1", indicator="status", config=CONFIG)
    assert check.would_succeed and check.error_type is None
    (machine,) = check.machines
    assert machine.rows_read == len(broken)
    assert machine.invalid_rows["missing_timestamp_or_rpm_variation"] == 7
    assert machine.invalid_rows["impossible_values"] == 3
    assert machine.impossible_by_column == {"Motor_Temperature_C": 3}
    assert machine.rows_valid == len(broken) - 10 - machine.invalid_rows["duplicate_timestamps"]
    assert machine.failure_events and machine.failure_events > 0
    assert check.rows_usable and 0 < check.rows_usable <= machine.rows_valid


def test_it_fails_as_training_fails_on_the_same_data(telemetry: Any) -> None:
    """The verdict is training's: data without a failure fails both with NoFailureEventsError."""
    calm = telemetry.assign(**{RPM_VARIATION: 0.0})
    check = check_training_data(calm, machine_name="PUMP-1", indicator="status", config=CONFIG)
    assert not check.would_succeed and check.error_type == "NoFailureEventsError"
    assert check.machines[0].failure_events == 0 and check.machines[0].rows_valid == len(calm)
    with pytest.raises(NoFailureEventsError) as raised:
        train_model(calm, machine_name="PUMP-1", indicator="status", config=CONFIG)
    assert str(raised.value) == check.error_message


def test_too_few_rows_still_reports_the_machine_s_counts(telemetry: Any) -> None:
    few = telemetry.head(40)
    check = check_training_data(few, machine_name="PUMP-1", indicator="health", config=CONFIG)
    assert not check.would_succeed and check.error_type == "InsufficientDataError"
    (machine,) = check.machines
    assert machine.rows_read == 40 and machine.rows_valid == 40
    assert machine.error and machine.error.startswith("InsufficientDataError: machine 'PUMP-1' has 40 valid rows")
    with pytest.raises(InsufficientDataError):
        train_model(few, machine_name="PUMP-1", indicator="health", config=CONFIG)


def test_recorded_events_are_the_failures_when_given(telemetry: Any) -> None:
    none = {"PUMP-1": np.array([], dtype=np.int64)}
    check = check_training_data(telemetry, machine_name="PUMP-1", indicator="status", config=CONFIG, events=none)
    assert check.error_type == "NoFailureEventsError" and check.machines[0].failure_events == 0


class _Catalog:
    def describe(self, machine_name: str) -> MachineSummary | None:
        return None

    def list_machines(self) -> list[MachineSummary]:
        return []


def test_an_unknown_machine_is_refused_as_post_train_refuses_it_before_any_read() -> None:
    class Unread:
        def read(self, *args: Any) -> Any:
            raise AssertionError("read")

    request = ValidateRequest(indicator=Indicator.STATUS, machine_name="NOPE", start_date=date(2025, 1, 1))
    with pytest.raises(InvalidRequestError) as raised:
        validate_logic.validate_training_data(request, catalog=_Catalog(), telemetry=Unread(),
                                              failure_events=Unread(), config=CONFIG)
    assert "NOPE" in str(raised.value)


class _Sfn:
    def __init__(self, events: list[dict[str, Any]] | None = None, error: str | None = None) -> None:
        self.events, self.error = events or [], error

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "GetExecutionHistory")
        assert kwargs["reverseOrder"] is True
        return {"events": list(reversed(self.events))}


def test_steps_are_the_states_entered_in_order() -> None:
    events = [{"id": 1, "type": "ExecutionStarted"},
              {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "MarkJobRunning"}},
              {"id": 3, "type": "TaskStateExited", "stateExitedEventDetails": {"name": "MarkJobRunning"}},
              {"id": 4, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "TrainModel"}}]
    assert ExecutionHistory(_Sfn(events)).steps("arn") == ["MarkJobRunning", "TrainModel"]
    assert ExecutionHistory(_Sfn(error="ExecutionDoesNotExist")).steps("arn") is None


class _Links:
    def presigned_get(self, uri: str, version_id: str | None = None, expires_seconds: int = 300) -> str:
        return f"https://signed/{uri}?v={version_id}&e={expires_seconds}"


def test_report_url_is_a_short_lived_link_to_the_recorded_version() -> None:
    version = ModelVersion(model_name=ModelName("PUMP-1", Indicator.STATUS), version="v1", machine_name="PUMP-1",
                           indicator=Indicator.STATUS, artifact_uri="s3://b/model/x.ubj", artifact_sha256="0" * 64,
                           report_uri="s3://b/model/x.report.html", report_version_id="rv")
    summary = ModelVersionSummary(machine_name="PUMP-1", indicator=Indicator.STATUS, version="v1", status="candidate",
                                  artifact_uri=version.artifact_uri, artifact_sha256=version.artifact_sha256)
    assert with_report_url(summary, version, _Links()).report_url == "https://signed/s3://b/model/x.report.html?v=rv&e=300"
    assert with_report_url(summary, version.model_copy(update={"report_uri": None}), _Links()).report_url is None
