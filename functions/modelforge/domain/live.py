"""Concept drift from ground truth: how the champion's captured predictions did against the failures that
came after them.

``/predict`` captures its predictions (``logic.predict.capture_predictions``, like SageMaker's data capture):
per record, the record's time, the score and whether it raised an alarm. When failure events arrive later,
each failure is judged on the captured predictions of its machine in its label window, the model's own
``window_minutes`` (a status model's "fails within" window; a health model alarms when it predicts a failure
within that many minutes):

* a failure is **observed** when some captured prediction falls in ``[onset - window, onset)``, and **caught**
  when one of those raised an alarm. **Live recall** = caught / observed: the event-level recall the training
  report shows as ``events_caught / events_total``.
* an alarm is **settled** once its window has passed by the time the ground truth is known to reach
  (``observed_until``), and **false** when no failure followed within the window. **Live false-alarm rate** =
  false / settled alarms: one minus the live precision of the alarms, comparable with 1 - the test precision.

Clients send the last hour or so of telemetry with every request, so the same record is often scored several
times: a record is counted once per machine and timestamp, with its latest capture (the decision the client
acted on last). Which captures and events are read is the caller's; this module is pure numpy/pandas.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelforge.domain.units import MINUTE_NS

DAY_NS = 1440 * MINUTE_NS
MAX_DAYS_SHOWN = 31


@dataclass(frozen=True)
class CaptureConfig:
    """How ``/predict`` captures (each field overridden by its PredictSettings field, ``capture_<name>``).

    Captured rows are kept in the warm container and written as one object when a model's buffer holds
    ``flush_rows`` rows, or when its oldest row is ``flush_seconds`` old, checked at each request
    (``logic.predict.CaptureBuffer``): a synchronous S3 put per request costs tens of milliseconds, many
    times the model. What a recycled container loses: the rows captured since its last flush, fewer than
    ``flush_rows`` per model, and only those whose container got no request once they were ``flush_seconds``
    old (docs/architecture.md, "Prediction capture")."""

    sample_rate: float = 1.0  # the share of requests captured (every one by default), as SageMaker samples
    flush_rows: int = 50_000  # about 10 MB of JSON lines; 50 requests of 1,000 records
    flush_seconds: float = 60.0  # how late the drift check may see a capture, while requests keep coming

    def __post_init__(self) -> None:
        if not 0 <= self.sample_rate <= 1:
            raise ValueError("sample_rate must be between 0 and 1")
        if self.flush_rows < 1 or self.flush_seconds < 0:
            raise ValueError("flush_rows must be at least 1 and flush_seconds not negative")


@dataclass(frozen=True)
class CapturedRows:
    """One request's captured records, column by column (a line per record is only made when written):
    what the live-recall check reads of each record (``logic.drift.captures_frame``)."""

    model_name: str
    model_version: str
    request_id: str
    captured_at: str  # ISO 8601, the request's
    timestamps: list[Any]  # the record's time as sent (text or a number), None without one
    machines: list[str]
    scores: list[float | None]
    predictions: list[float]
    alarms: list[bool] | None  # status models; health: None (the check decides from the prediction)


def is_sampled(request_id: str, sample_rate: float) -> bool:
    """Whether a request is captured: a hash of its id against the rate, so a retried request decides the
    same way and a test can tell which requests are in."""
    if sample_rate >= 1:
        return True
    return zlib.crc32(request_id.encode()) / 2**32 < sample_rate


@dataclass(frozen=True)
class LivePerformance:
    failures: int  # observed failures: with a captured prediction in their label window
    caught: int
    recall: float | None
    alarms: int  # settled alarms
    false_alarms: int
    false_alarm_rate: float | None
    predictions: int  # distinct captured records
    window_minutes: float
    by_day: list[dict[str, Any]] = field(default_factory=list)


def live_performance(captures: pd.DataFrame, events: pd.DataFrame, *, window_minutes: float,
                     observed_until: pd.Timestamp) -> LivePerformance:
    """``captures``: columns ``machine_name``, ``time`` (UTC), ``alarm`` (bool), ``captured_at`` (UTC, which
    capture is the latest); ``events``: ``machine_name``, ``timestamp`` (UTC), the failure onsets."""
    window = int(window_minutes * MINUTE_NS)
    until = pd.Timestamp(observed_until).value
    records = _latest_per_record(captures)
    totals = np.zeros(4, dtype=int)  # failures, caught, settled alarms, false alarms
    daily: dict[int, np.ndarray] = {}
    for machine, rows in records.groupby("machine_name", sort=True):
        t = rows["time"].to_numpy("datetime64[ns]").astype("int64")
        alarm = rows["alarm"].to_numpy(bool)
        onsets = np.sort(events.loc[events["machine_name"] == machine, "timestamp"]
                         .to_numpy("datetime64[ns]").astype("int64"))
        onsets = onsets[onsets <= until]
        judged = _judge(t, alarm, onsets, window, until)
        totals += [len(judged["observed"]), int(judged["caught"].sum()), int(judged["settled"].sum()),
                   int(judged["false"].sum())]
        _add_days(daily, t, alarm, judged, onsets)
    failures, caught, alarms, false_alarms = (int(v) for v in totals)
    return LivePerformance(
        failures=failures, caught=caught, recall=caught / failures if failures else None, alarms=alarms,
        false_alarms=false_alarms, false_alarm_rate=false_alarms / alarms if alarms else None,
        predictions=len(records), window_minutes=float(window_minutes), by_day=_days(daily))


def _latest_per_record(captures: pd.DataFrame) -> pd.DataFrame:
    if len(captures) == 0:
        return pd.DataFrame({"machine_name": [], "time": pd.to_datetime([], utc=True), "alarm": []})
    ordered = captures.sort_values(["machine_name", "time", "captured_at"], kind="stable")
    latest = ordered.drop_duplicates(["machine_name", "time"], keep="last")
    return latest.reset_index(drop=True)


def _judge(t: np.ndarray, alarm: np.ndarray, onsets: np.ndarray, window: int, until: int) -> dict[str, np.ndarray]:
    """One machine's predictions (sorted times ``t``) against its onsets."""
    lead_start = onsets - window
    first = np.searchsorted(t, lead_start, side="left")
    last = np.searchsorted(t, onsets, side="left")  # predictions in [onset - window, onset)
    observed = last > first
    alarm_count = np.concatenate([[0], np.cumsum(alarm)])
    caught = (alarm_count[last] - alarm_count[first] > 0) & observed
    # An alarm at time a is right when an onset falls in (a, a + window]; settled once a + window <= until.
    following = np.searchsorted(onsets, t, side="right")
    has_next = following < len(onsets)
    right = np.zeros(len(t), dtype=bool)
    right[has_next] = onsets[following[has_next]] - t[has_next] <= window
    settled = alarm & ((t + window <= until) | right)
    return {"observed": onsets[observed], "caught": caught[observed], "settled": settled,
            "false": settled & ~right}


def _add_days(daily: dict[int, np.ndarray], t: np.ndarray, alarm: np.ndarray, judged: dict[str, np.ndarray],
              onsets: np.ndarray) -> None:
    """Per UTC day: predictions, alarms, settled false alarms (by the prediction's day); observed failures and
    caught ones (by the onset's day)."""
    day = t // DAY_NS
    for d in np.unique(day):
        mask = day == d
        row = daily.setdefault(int(d), np.zeros(5, dtype=int))
        row[:3] += [int(mask.sum()), int(alarm[mask].sum()), int(judged["false"][mask].sum())]
    for onset, caught in zip(judged["observed"], judged["caught"], strict=True):
        row = daily.setdefault(int(onset // DAY_NS), np.zeros(5, dtype=int))
        row[3:] += [1, int(caught)]


def _days(daily: dict[int, np.ndarray]) -> list[dict[str, Any]]:
    """The newest ``MAX_DAYS_SHOWN`` days, oldest first."""
    rows = []
    for day in sorted(daily)[-MAX_DAYS_SHOWN:]:
        predictions, alarms, false_alarms, failures, caught = (int(v) for v in daily[day])
        rows.append({"day": pd.Timestamp(day * DAY_NS, tz="UTC").date().isoformat(), "predictions": predictions,
                     "alarms": alarms, "false_alarms": false_alarms, "failures": failures, "caught": caught,
                     "recall": caught / failures if failures else None})
    return rows
