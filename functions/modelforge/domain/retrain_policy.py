"""Whether a champion is retrained, and why: one decision per model per retraining run, with the figures that
made it, recorded on the run (and on a trigger record when it starts a retrain).

The reasons, in the order they are considered (the first that holds wins, so a record names one cause):

* ``skip: already_in_flight``: a retrain of the model is still running; never a second one (the caller's
  conditional lock is what guarantees it; this is the early answer when the lock is seen held).
* ``forced``: an operator asked for it (``POST /retrain`` with ``force``, the runbook's option 1).
* ``skip: not_enough_data``: the model's machines have no data newer than the champion's that a check could use.
* ``concept_drift``: live recall on captured predictions below the floor (``modelforge.domain.live``).
* ``drift``: data drift (``modelforge.domain.drift``'s verdict ``drift``).
* ``age``: the champion was trained longer ago than ``max_age_days``.
* ``new_data``: enough new rows (``min_new_rows``) or new failure events (``min_new_failures``) since the
  champion's training data ended: more readings to learn from, or more of the labels that are scarce.
* ``skip: stable``: none of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DRIFT, CONCEPT_DRIFT, AGE, NEW_DATA, FORCED, SKIP = "drift", "concept_drift", "age", "new_data", "forced", "skip"
RETRAIN_REASONS = (DRIFT, CONCEPT_DRIFT, AGE, NEW_DATA, FORCED)
STABLE, IN_FLIGHT, NOT_ENOUGH_DATA = "stable", "already_in_flight", "not_enough_data"
SKIP_REASONS = (STABLE, IN_FLIGHT, NOT_ENOUGH_DATA)


@dataclass(frozen=True)
class RetrainPolicy:
    """When a champion is retrained (RetrainSettings override these, the only defaults)."""

    max_age_days: float = 90.0  # a champion older than this is retrained for ``age``
    # ``new_data``: this many telemetry rows (over all of the model's machines: 30 days of one machine's
    # readings at one a minute) or this many recorded failure events after the champion's data ended.
    # Failures are the scarce labels, so a few new ones are worth a retrain on their own.
    min_new_rows: int = 43_200
    min_new_failures: int = 3
    # Drift on a champion trained longer ago than this is "drift and no successful retrain" (the runbook's
    # NoRetrainWithDrift alarm): the champion is the newest retrain that won.
    no_retrain_alert_days: float = 30.0

    def __post_init__(self) -> None:
        if self.max_age_days <= 0 or self.min_new_rows <= 0 or self.min_new_failures <= 0:
            raise ValueError("max_age_days, min_new_rows and min_new_failures must be positive")


@dataclass(frozen=True)
class ModelEvidence:
    """What the checks found for one champion (``None``: not measured)."""

    forced: bool = False
    in_flight: bool = False
    drift_status: str | None = None  # stable | moderate | drift | no_data | error (logic.drift)
    drift_share: float | None = None
    max_psi: float | None = None
    concept_drift: bool = False
    live_recall: float | None = None
    live_failures: int = 0
    age_days: float | None = None  # since the champion was trained
    # After the champion's training data ended: telemetry rows over its machines, recorded failure events.
    new_rows: int | None = None
    new_failures: int | None = None
    has_data: bool = True


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reason: str  # one of RETRAIN_REASONS, or SKIP
    skip_reason: str | None = None  # one of SKIP_REASONS when reason is SKIP
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``drift`` or ``skip: stable``: how the run's summary counts it."""
        return f"{SKIP}: {self.skip_reason}" if self.reason == SKIP else self.reason


def decide(evidence: ModelEvidence, policy: RetrainPolicy) -> RetrainDecision:
    figures = _figures(evidence, policy)
    if evidence.in_flight:
        return RetrainDecision(False, SKIP, IN_FLIGHT, figures)
    if evidence.forced:
        return RetrainDecision(True, FORCED, None, figures)
    if not evidence.has_data or evidence.drift_status == "no_data":
        return RetrainDecision(False, SKIP, NOT_ENOUGH_DATA, figures)
    if evidence.concept_drift:
        return RetrainDecision(True, CONCEPT_DRIFT, None, figures)
    if evidence.drift_status == DRIFT:
        return RetrainDecision(True, DRIFT, None, figures)
    if evidence.age_days is not None and evidence.age_days > policy.max_age_days:
        return RetrainDecision(True, AGE, None, figures)
    if _enough_new_data(evidence, policy):
        return RetrainDecision(True, NEW_DATA, None, figures)
    return RetrainDecision(False, SKIP, STABLE, figures)


def _enough_new_data(evidence: ModelEvidence, policy: RetrainPolicy) -> bool:
    rows, failures = evidence.new_rows, evidence.new_failures
    return (rows is not None and rows >= policy.min_new_rows) or (
        failures is not None and failures >= policy.min_new_failures)


def _figures(evidence: ModelEvidence, policy: RetrainPolicy) -> dict[str, Any]:
    """The measured figures beside the thresholds they were judged against (unmeasured ones left out)."""
    figures: dict[str, Any] = {
        "drift_status": evidence.drift_status, "drift_share": evidence.drift_share, "max_psi": evidence.max_psi,
        "live_recall": evidence.live_recall, "live_failures": evidence.live_failures or None,
        "age_days": None if evidence.age_days is None else round(evidence.age_days, 2),
        "new_rows": evidence.new_rows, "new_failures": evidence.new_failures,
    }
    figures = {k: v for k, v in figures.items() if v is not None}
    if "age_days" in figures:
        figures["max_age_days"] = policy.max_age_days
    if "new_rows" in figures:
        figures["min_new_rows"] = policy.min_new_rows
    if "new_failures" in figures:
        figures["min_new_failures"] = policy.min_new_failures
    return figures


def drift_without_recent_retrain(evidence: ModelEvidence, policy: RetrainPolicy) -> bool:
    """Drift detected and no successful retrain (a newer champion) for ``no_retrain_alert_days``."""
    drifted = evidence.drift_status == DRIFT or evidence.concept_drift
    return drifted and evidence.age_days is not None and evidence.age_days > policy.no_retrain_alert_days
