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

POLICY = RetrainPolicy(max_age_days=90, min_new_days=30)
STABLE = ModelEvidence(drift_status="stable", drift_share=0.1, max_psi=0.02, age_days=10, new_days=3)


@pytest.mark.parametrize(("evidence", "label"), [
    (STABLE, "skip: stable"),
    (ModelEvidence(drift_status="moderate", drift_share=0.3, max_psi=0.15, age_days=10, new_days=3), "skip: stable"),
    (ModelEvidence(drift_status="drift", drift_share=0.6, max_psi=0.9, age_days=10, new_days=3), "drift"),
    (ModelEvidence(drift_status="stable", concept_drift=True, live_recall=0.2, live_failures=4, age_days=10),
     "concept_drift"),
    (ModelEvidence(drift_status="stable", age_days=91, new_days=3), "age"),
    (ModelEvidence(drift_status="stable", age_days=89.9, new_days=3), "skip: stable"),
    (ModelEvidence(drift_status="stable", age_days=10, new_days=30), "new_data"),
    (ModelEvidence(drift_status="stable", age_days=10, new_days=29.9), "skip: stable"),
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
    everything = ModelEvidence(drift_status="drift", concept_drift=True, age_days=400, new_days=100)
    assert decide(everything, POLICY).reason == "concept_drift"
    assert decide(ModelEvidence(drift_status="drift", age_days=400, new_days=100), POLICY).reason == "drift"
    assert decide(ModelEvidence(drift_status="stable", age_days=400, new_days=100), POLICY).reason == "age"


def test_the_figures_name_what_was_measured_and_the_thresholds() -> None:
    decision = decide(ModelEvidence(drift_status="drift", drift_share=0.6, max_psi=0.9, age_days=10.123,
                                    new_days=3), POLICY)
    assert decision.figures == {"drift_status": "drift", "drift_share": 0.6, "max_psi": 0.9, "age_days": 10.12,
                                "new_days": 3, "max_age_days": 90, "min_new_days": 30}
    assert decide(ModelEvidence(forced=True), POLICY).figures == {}


def test_the_thresholds_are_the_policy_s() -> None:
    evidence = ModelEvidence(drift_status="stable", age_days=40, new_days=3)
    assert decide(evidence, POLICY).label == "skip: stable"
    assert decide(evidence, RetrainPolicy(max_age_days=30)).label == "age"
    with pytest.raises(ValueError, match="positive"):
        RetrainPolicy(max_age_days=0)


def test_drift_on_an_old_champion_is_the_no_retrain_alert() -> None:
    assert drift_without_recent_retrain(ModelEvidence(drift_status="drift", age_days=31), POLICY)
    assert drift_without_recent_retrain(ModelEvidence(concept_drift=True, age_days=31), POLICY)
    assert not drift_without_recent_retrain(ModelEvidence(drift_status="drift", age_days=29), POLICY)
    assert not drift_without_recent_retrain(ModelEvidence(drift_status="stable", age_days=400), POLICY)
