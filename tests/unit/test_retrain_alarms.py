"""The runbook's alarms in template.yaml watch series the code really emits: each Modelforge alarm's metric
name and dimensions are found among the EMF lines the retraining logic prints while a retrain is decided on,
started, fails, succeeds and outlives its champion's drift; and each alarm has the runbook's threshold."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from localcloud.template import TEMPLATE_PATH, load_template
from modelforge.adapters.trigger_store import TriggerStore
from modelforge.logic.retrain import process_item
from modelforge.logic.retrain_runs import apply_execution_event
from tests.unit import test_trigger_store as stores
from tests.unit.test_trigger_store import NOW, POLICY, Fakes, champion, change, item

store = stores.store  # the triggers table on moto


def emitted(output: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """(metric name, its dimensions and their values) of every EMF line printed."""
    found = set()
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    found.add((metric["Name"], frozenset((d, str(document[d])) for d in dimensions)))
    return found


def alarms_on_our_metrics() -> dict[str, dict[str, Any]]:
    resources = load_template()["Resources"]
    return {name: r["Properties"] for name, r in resources.items()
            if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "Modelforge"}


def test_every_alarm_on_our_namespace_watches_a_series_the_code_emits(store: TriggerStore,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fakes = Fakes({"M-1": champion("M-1"), "M-2": champion("M-2"), "OLD": champion("OLD", trained_days_ago=45)},
                  drift={"OLD": {"status": "drift", "max_psi": 0.9, "drift_share": 0.7}})
    ok = process_item(item("M-1", force=True), fakes.deps(store), POLICY, now=lambda: NOW)
    bad = process_item(item("M-2", force=True), fakes.deps(store), POLICY, now=lambda: NOW)
    process_item(item("OLD"), fakes.deps(store), POLICY, now=lambda: NOW)
    apply_execution_event(change(str(ok.trigger_id), "SUCCEEDED"), triggers=store,
                          now=lambda: NOW + timedelta(hours=2, seconds=1))
    apply_execution_event(change(str(bad.trigger_id), "TIMED_OUT"), triggers=store, now=lambda: NOW)
    series = emitted(capsys.readouterr().out)
    alarms = alarms_on_our_metrics()
    assert {a["MetricName"] for a in alarms.values()} == {"RetrainsFailed", "RetrainDuration",
                                                          "DriftWithoutRecentRetrain"}
    for name, alarm in alarms.items():
        dimensions = frozenset((d["Name"], d["Value"]) for d in alarm["Dimensions"])
        assert (alarm["MetricName"], dimensions) in series, name
    assert ("RetrainsTriggered", frozenset({("service", "modelforge"), ("reason", "forced"),
                                            ("outcome", "started")})) in series
    assert ("RetrainsTriggered", frozenset({("service", "modelforge"), ("reason", "drift"),
                                            ("outcome", "started")})) in series


def test_the_alarms_have_the_runbook_s_thresholds_and_notify_the_alarm_topic() -> None:
    resources = load_template()["Resources"]
    expected = {  # alarm -> (metric, statistic, period, threshold)
        "AutoRetrainFailedAlarm": ("RetrainsFailed", "Sum", 3600, 1),  # a retrain failed in the last hour
        "AutoRetrainLongDurationAlarm": ("RetrainDuration", "Maximum", 3600, 7200),  # over 2 hours
        "NoRetrainWithDriftAlarm": ("DriftWithoutRecentRetrain", "Sum", 86400, 1),  # drift, no retrain in 30 days
        "RetrainScheduleFailedAlarm": ("ApproximateNumberOfMessagesVisible", "Maximum", 300, 1),  # the DLQ
    }
    for name, (metric, statistic, period, threshold) in expected.items():
        alarm = resources[name]["Properties"]
        assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == (
            metric, statistic, period, threshold), name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    queue = resources["RetrainSchedule"]["Properties"]["Target"]["DeadLetterConfig"]["Arn"]
    assert resources["RetrainScheduleFailedAlarm"]["Properties"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue["Fn::GetAtt"][0], "QueueName"]}}]
    # Nothing hangs past the long-duration threshold: the training state machine ends there.
    definition = json.loads((TEMPLATE_PATH.parent / "state_machine/training.asl.json").read_text())
    assert definition["TimeoutSeconds"] == 7200
