"""The retraining decision (domain.retrain_policy) on crafted evidence: drift, live performance, ages, new
data, forced, and every reason to skip."""

from __future__ import annotations

import pytest

from modelforge.domain.retrain_policy import (
    ModelEvidence,
    RetrainPolicy,
    decide,
    drift_without_recent_retrain,
)

POLICY = RetrainPolicy(max_age_days=90, min_new_rows=1000, min_new_failures=3)
STABLE = ModelEvidence(drift_status="stable", drift_share=0.1, max_psi=0.02, age_days=10, new_rows=30,
                       new_failures=0)


@pytest.mark.parametrize(("evidence", "label"), [
    (STABLE, "skip: stable"),
    (ModelEvidence(drift_status="moderate", drift_share=0.3, max_psi=0.15, age_days=10, new_rows=30,
                   new_failures=0), "skip: stable"),
    (ModelEvidence(drift_status="drift", drift_share=0.6, max_psi=0.9, age_days=10, new_rows=30, new_failures=0),
     "drift"),
    (ModelEvidence(drift_status="stable", concept_drift=True, live_recall=0.2, live_failures=4, age_days=10),
     "concept_drift"),
    (ModelEvidence(drift_status="stable", age_days=91, new_rows=30, new_failures=0), "age"),
    (ModelEvidence(drift_status="stable", age_days=89.9, new_rows=30, new_failures=0), "skip: stable"),
    (ModelEvidence(drift_status="stable", age_days=10, new_rows=1000, new_failures=0), "new_data"),
    (ModelEvidence(drift_status="stable", age_days=10, new_rows=999, new_failures=0), "skip: stable"),
    (ModelEvidence(drift_status="stable", age_days=10, new_rows=5, new_failures=3), "new_data"),
    (ModelEvidence(drift_status="stable", age_days=10, new_rows=999, new_failures=2), "skip: stable"),
    (ModelEvidence(drift_status="stable", age_days=10), "skip: stable"),  # not measured: not new data
    (ModelEvidence(has_data=False), "skip: not_enough_data"),
    (ModelEvidence(drift_status="no_data", age_days=400), "skip: not_enough_data"),
    (ModelEvidence(forced=True), "forced"),
    (ModelEvidence(in_flight=True, forced=True), "skip: already_in_flight"),
    (ModelEvidence(in_flight=True, drift_status="drift"), "skip: already_in_flight"),
])
def test_each_reason(evidence: ModelEvidence, label: str) -> None:
    decision = decide(evidence, POLICY)
    assert decision.label == label
    assert decision.retrain == (not label.startswith("skip"))


def test_one_cause_is_named_in_order_concept_drift_then_drift_then_age_then_new_data() -> None:
    plenty = {"age_days": 400, "new_rows": 10**6, "new_failures": 50}
    everything = ModelEvidence(drift_status="drift", concept_drift=True, **plenty)  # type: ignore[arg-type]
    assert decide(everything, POLICY).reason == "concept_drift"
    assert decide(ModelEvidence(drift_status="drift", **plenty), POLICY).reason == "drift"  # type: ignore[arg-type]
    assert decide(ModelEvidence(drift_status="stable", **plenty), POLICY).reason == "age"  # type: ignore[arg-type]
    assert decide(ModelEvidence(drift_status="stable", new_rows=10**6), POLICY).reason == "new_data"


def test_the_figures_name_what_was_measured_and_the_thresholds() -> None:
    decision = decide(ModelEvidence(drift_status="drift", drift_share=0.6, max_psi=0.9, age_days=10.123,
                                    new_rows=30, new_failures=0), POLICY)
    assert decision.figures == {"drift_status": "drift", "drift_share": 0.6, "max_psi": 0.9, "age_days": 10.12,
                                "new_rows": 30, "new_failures": 0, "max_age_days": 90, "min_new_rows": 1000,
                                "min_new_failures": 3}
    assert decide(ModelEvidence(forced=True), POLICY).figures == {}


def test_the_thresholds_are_the_policy_s() -> None:
    evidence = ModelEvidence(drift_status="stable", age_days=40, new_rows=30, new_failures=0)
    assert decide(evidence, POLICY).label == "skip: stable"
    assert decide(evidence, RetrainPolicy(max_age_days=30)).label == "age"
    assert decide(evidence, RetrainPolicy(min_new_rows=30)).label == "new_data"
    assert decide(evidence, RetrainPolicy(min_new_rows=31)).label == "skip: stable"
    for bad in ({"max_age_days": 0}, {"min_new_rows": 0}, {"min_new_failures": 0}):
        with pytest.raises(ValueError, match="positive"):
            RetrainPolicy(**bad)  # type: ignore[arg-type]


def test_new_data_counts_rows_or_failure_events_by_the_defaults() -> None:
    """The domain's defaults: 30 days of one machine's minute readings, or three new failures."""
    defaults = RetrainPolicy()
    assert (defaults.min_new_rows, defaults.min_new_failures) == (43_200, 3)
    quiet = ModelEvidence(drift_status="stable", age_days=1, new_rows=43_199, new_failures=2)
    assert decide(quiet, defaults).label == "skip: stable"
    assert decide(ModelEvidence(drift_status="stable", age_days=1, new_rows=43_200), defaults).label == "new_data"
    assert decide(ModelEvidence(drift_status="stable", age_days=1, new_failures=3), defaults).label == "new_data"


def test_drift_on_an_old_champion_is_the_no_retrain_alert() -> None:
    assert drift_without_recent_retrain(ModelEvidence(drift_status="drift", age_days=31), POLICY)
    assert drift_without_recent_retrain(ModelEvidence(concept_drift=True, age_days=31), POLICY)
    assert not drift_without_recent_retrain(ModelEvidence(drift_status="drift", age_days=29), POLICY)
    assert not drift_without_recent_retrain(ModelEvidence(drift_status="stable", age_days=400), POLICY)
