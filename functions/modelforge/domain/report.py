"""The per-job HTML report: one self-contained page (PNG plots embedded as base64 data URIs), stored beside the
model. Plots: the precision-recall curve (status) or predicted against true time to failure (health), the
feature importance, and the timeline of the held-out period with the predicted risk against the real
failures, plus a close-up of the first failures. Tables: headline metrics against the trivial baseline, the
confusion matrix, events caught ahead, data validation counts, the search, and the lineage.

Matplotlib runs on the Agg backend through its object-oriented API (no pyplot global state).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from modelforge.domain.evaluation import pr_curve_points
from modelforge.domain.units import MINUTE_NS

if TYPE_CHECKING:
    from modelforge.domain.pipeline import TrainedModel

PLOT_DPI = 100
MAX_TIMELINE_POINTS = 6000
ZOOM_EVENTS = 3
ZOOM_HOURS = 6
RISK_FLOOR = 1e-4
COLORS = {"model": "#1f77b4", "baseline": "#7f7f7f", "failure": "#d62728", "window": "#ff9896",
          "threshold": "#ff7f0e", "alarm": "#9467bd"}


def render_report(trained: TrainedModel, *, title: str | None = None) -> str:
    """The report as an HTML string."""
    plots = render_plots(trained)
    status = trained.indicator == "status"
    heading = title or f"{trained.machine_name} · {trained.indicator} model"
    sections = [
        f"<h1>{_e(heading)}</h1>",
        f"<p class='sub'>Trained on {_e(trained.data['first_timestamp'][:16])} → "
        f"{_e(trained.data['last_timestamp'][:16])} · tested on the final period from "
        f"{_e(trained.data['split_time'][:16])} · device {_e(trained.params.get('device'))} · "
        f"{_e(trained.params['search']['strategy'])} search, {trained.params['search']['fits']} fits</p>",
        _headline(trained, status),
        "<h2>Held-out period</h2>",
        _figure(plots["timeline"], "Predicted risk against real failures over the held-out period"
                + _timeline_scope(trained)),
        _figure(plots["zoom"], "Close-up of the first failures in the held-out period") if "zoom" in plots else "",
        "<div class='row'>",
        _figure(plots["pr_curve"] if status else plots["predicted_vs_true"],
                "Precision-recall curve" if status else "Predicted against true minutes to failure"),
        _figure(plots["importance"], "Feature importance (share of total gain)"),
        "</div>",
        _metrics_table(trained, status),
        _events_table(trained),
        _confusion(trained) if status else "",
        "<h2>Data</h2>",
        _kv_table(_data_rows(trained.data)),
        "<h2>Search</h2>",
        _search_table(trained),
        "<h2>Lineage</h2>",
        _kv_table([(k, v) for k, v in trained.lineage.items()]),
    ]
    return _PAGE.format(title=_e(heading), body="\n".join(s for s in sections if s))


def render_plots(trained: TrainedModel) -> dict[str, bytes]:
    """Every plot as PNG bytes, by name."""
    # A fleet's held-out rows interleave several machines' timelines: plot one machine's (named in the title).
    view = trained.evaluation.timeline_view()
    one = trained if view is trained.evaluation else dataclasses.replace(
        trained, evaluation=view, machine_name=f"{trained.machine_name} / {view.machine_names[0]}")
    plots = {"timeline": _timeline(one), "importance": _importance(trained)}
    zoom = _zoom(one)
    if zoom is not None:
        plots["zoom"] = zoom
    if trained.indicator == "status":
        plots["pr_curve"] = _pr_curve(trained)
    else:
        plots["predicted_vs_true"] = _predicted_vs_true(trained)
    return plots


def _timeline_scope(trained: TrainedModel) -> str:
    """For a fleet, which machine the timelines show: one, so that the plots cost the same for any fleet."""
    ev = trained.evaluation
    if ev.machine is None or len(ev.machine) == 0:
        return ""
    shown = ev.timeline_view().machine_names[0]
    held_out = len(np.unique(ev.machine))
    return (f" (machine {shown}, the held-out machine with the most rows: one of {held_out}; the curves below "
            "are over every held-out row)")


# ---------------------------------------------------------------- plots


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PLOT_DPI)  # the layout is constrained: one draw, not two
    return buffer.getvalue()


def _times(ns: np.ndarray) -> np.ndarray:
    return pd.to_datetime(ns, unit="ns", utc=True).tz_localize(None).to_numpy()


def _pr_curve(trained: TrainedModel) -> bytes:
    ev, m = trained.evaluation, trained.metrics
    curve = pr_curve_points(ev.y_true.astype(int), ev.predicted)
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(curve["recall"], curve["precision"], color=COLORS["model"], lw=2,
            label=f"model (PR-AUC {_fmt(m.get('pr_auc'))})")
    prevalence = float(ev.y_true.mean()) if len(ev.y_true) else 0.0
    ax.axhline(prevalence, color=COLORS["baseline"], ls="--",
               label=f"baseline: always alarm (PR-AUC {_fmt(prevalence)})")
    ax.scatter([m["recall"]], [m["precision"]], color=COLORS["threshold"], zorder=5, s=60,
               label=f"chosen threshold {m['threshold']:.3g} (picked on validation)")
    floor = trained.params.get("config", {}).get("search", {}).get("min_precision")
    if floor is not None:
        ax.axhline(floor, color=COLORS["threshold"], ls=":", lw=1, label=f"precision floor {floor:g}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
           title="Precision-recall on the held-out period")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def _predicted_vs_true(trained: TrainedModel) -> bytes:
    ev = trained.evaluation
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    hb = ax.hexbin(ev.y_true, ev.predicted, gridsize=40, bins="log", cmap="Blues", mincnt=1)
    fig.colorbar(hb, ax=ax, label="rows (log)")
    top = float(max(ev.y_true.max(initial=1), ev.predicted.max(initial=1)))
    ax.plot([0, top], [0, top], color=COLORS["failure"], ls="--", lw=1, label="perfect")
    ax.set(xlabel="true minutes to failure (capped)", ylabel="predicted minutes",
           title=f"Held-out period: RMSE {_fmt(trained.metrics['rmse'])}, R² {_fmt(trained.metrics.get('r2'))}")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _importance(trained: TrainedModel, top: int = 15) -> bytes:
    items = list(trained.feature_importance.items())[:top][::-1]
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.barh([name for name, _ in items], [share for _, share in items], color=COLORS["model"])
    ax.set(xlabel="share of total gain", title=f"Top {len(items)} features")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _risk_axes(ax: Any, trained: TrainedModel, rows: np.ndarray) -> None:
    ev = trained.evaluation
    status = trained.indicator == "status"
    t = ev.timestamps_ns[rows]
    times = _times(t)
    window_ns = trained.params["config"]["labeling"]["window_minutes"] * MINUTE_NS
    lo, hi = (t[0], t[-1]) if len(t) else (0, 0)
    onsets = ev.onsets_ns[(ev.onsets_ns >= lo - window_ns) & (ev.onsets_ns <= hi + window_ns)]
    for i, onset in enumerate(onsets):
        ax.axvspan(_times(np.array([onset - window_ns]))[0], _times(np.array([onset]))[0],
                   color=COLORS["window"], alpha=0.35, lw=0, label="pre-failure window" if i == 0 else None)
        ax.axvline(_times(np.array([onset]))[0], color=COLORS["failure"], lw=1.5,
                   label="failure (onset)" if i == 0 else None)
    if status:
        # Log scale: with a rare class the useful thresholds are often far below 0.5.
        ax.plot(times, np.clip(ev.predicted[rows], RISK_FLOOR, 1), color=COLORS["model"], lw=0.8,
                label="predicted risk")
        ax.axhline(max(trained.metrics["threshold"], RISK_FLOOR), color=COLORS["threshold"], ls="--", lw=1,
                   label=f"threshold {trained.metrics['threshold']:.3g}")
        ax.set_yscale("log")
        ax.set(ylabel="P(failure within window), log", ylim=(RISK_FLOOR, 1.5))
    else:
        ax.plot(times, ev.y_true[rows], color=COLORS["baseline"], lw=0.8, label="true minutes to failure")
        ax.plot(times, ev.predicted[rows], color=COLORS["model"], lw=0.8, label="predicted")
        ax.axhline(trained.params["config"]["labeling"]["window_minutes"], color=COLORS["threshold"], ls="--",
                   lw=1, label="alarm level")
        ax.set(ylabel="minutes to failure (capped)")
    ax.grid(alpha=0.3)


def _thin(n: int, max_points: int) -> np.ndarray:
    """Row positions to plot: all of them, or an even subset that keeps every alarm and positive."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).astype(int))


def _timeline(trained: TrainedModel) -> bytes:
    ev = trained.evaluation
    rows = _thin(len(ev.timestamps_ns), MAX_TIMELINE_POINTS)
    # Never thin away the peaks: keep every alarmed or pre-failure row.
    rows = np.union1d(rows, np.flatnonzero(ev.alarm | (ev.y_true > 0 if trained.indicator == "status"
                                                        else ev.y_true < ev.y_true.max(initial=0))))
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax = fig.subplots()
    _risk_axes(ax, trained, rows)
    ax.set_title(f"{trained.machine_name}: predicted {'risk' if trained.indicator == 'status' else 'health'} "
                 "against real failures, held-out period")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    fig.autofmt_xdate()
    return _png(fig)


def _zoom(trained: TrainedModel) -> bytes | None:
    ev = trained.evaluation
    if len(ev.timestamps_ns) == 0:
        return None
    t = ev.timestamps_ns
    inside = ev.onsets_ns[(ev.onsets_ns > t[0]) & (ev.onsets_ns <= t[-1] + 30 * MINUTE_NS)][:ZOOM_EVENTS]
    if len(inside) == 0:
        return None
    fig = Figure(figsize=(12, 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(inside), squeeze=False)[0])
    for ax, onset in zip(axes, inside, strict=True):
        rows = np.flatnonzero((t >= onset - ZOOM_HOURS * 60 * MINUTE_NS) & (t <= onset + 60 * MINUTE_NS))
        _risk_axes(ax, trained, rows)
        ax.set_title(pd.Timestamp(int(onset), unit="ns", tz="UTC").strftime("failure at %Y-%m-%d %H:%M UTC"),
                     fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    axes[0].legend(loc="upper left", fontsize=7)
    return _png(fig)


# ---------------------------------------------------------------- tables


def _headline(trained: TrainedModel, status: bool) -> str:
    m = trained.metrics
    if status:
        cards = [("Recall", m["recall"], m.get("baseline_recall")),
                 ("Precision", m["precision"], m.get("baseline_precision")),
                 ("PR-AUC", m.get("pr_auc"), m.get("baseline_pr_auc")),
                 ("F2", m["f2"], m.get("baseline_f2"))]
    else:
        cards = [("RMSE (min)", m["rmse"], m.get("baseline_rmse")), ("MAE (min)", m["mae"], m.get("baseline_mae")),
                 ("R²", m.get("r2"), m.get("baseline_r2"))]
    caught = (f"{m['events_caught_ahead']} / {m['events_total']}", None)
    html_cards = [f"<div class='card'><div class='v'>{_fmt(v)}</div><div class='k'>{_e(k)}</div>"
                  f"<div class='b'>baseline {_fmt(b)}</div></div>" for k, v, b in cards]
    html_cards.append(f"<div class='card'><div class='v'>{caught[0]}</div><div class='k'>failures caught ≥ "
                      f"{m['lead_minutes']:g} min ahead</div><div class='b'>{_fmt(m['false_alarms_per_day'])} "
                      "false alarms / day</div></div>")
    return "<div class='cards'>" + "".join(html_cards) + "</div>"


def _metrics_table(trained: TrainedModel, status: bool) -> str:
    keys = (["threshold", "recall", "precision", "f1", "f2", "pr_auc", "roc_auc", "positives", "rows"] if status
            else ["rmse", "mae", "r2", "mae_near_failure", "rows"])
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_fmt(trained.metrics.get(k))}</td>"
                   f"<td>{_fmt(trained.baseline_metrics.get(k))}</td></tr>" for k in keys)
    return (f"<h2>Metrics on the held-out period</h2><table><tr><th></th><th>model</th><th>baseline: "
            f"{_e(trained.baseline_metrics.get('kind', ''))}</th></tr>{rows}</table>")


def _events_table(trained: TrainedModel) -> str:
    keys = ["events_total", "events_caught", "events_caught_ahead", "lead_minutes", "median_lead_minutes",
            "false_alarm_episodes", "false_alarms_per_day", "evaluated_days"]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_fmt(trained.metrics.get(k))}</td>"
                   f"<td>{_fmt(trained.baseline_metrics.get(k))}</td></tr>" for k in keys)
    return f"<h2>Failure events</h2><table><tr><th></th><th>model</th><th>baseline</th></tr>{rows}</table>"


def _confusion(trained: TrainedModel) -> str:
    cm = trained.metrics["confusion_matrix"]
    return ("<h2>Confusion matrix at the chosen threshold</h2><table class='cm'>"
            "<tr><th></th><th>predicted normal</th><th>predicted pre-failure</th></tr>"
            f"<tr><th>normal</th><td>{cm['tn']}</td><td>{cm['fp']}</td></tr>"
            f"<tr><th>pre-failure</th><td>{cm['fn']}</td><td>{cm['tp']}</td></tr></table>")


def _data_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in data.items()]


def _search_table(trained: TrainedModel) -> str:
    search = trained.params["search"]
    trials = search.get("trials", [])
    columns = sorted({k for trial in trials for k in trial if k != "params"})
    head = "".join(f"<th>{_e(c)}</th>" for c in ["params", *columns])
    body = "".join("<tr><td>" + _e(json.dumps(trial.get("params", {}))) + "</td>"
                   + "".join(f"<td>{_fmt(trial.get(c))}</td>" for c in columns) + "</tr>" for trial in trials[:50])
    chosen = {k: v for k, v in trained.params.items() if k not in ("search", "config")}
    return (f"<p>Strategy <b>{_e(search['strategy'])}</b>: {search['fits']} model fits in "
            f"{_fmt(search['seconds'])} s. Chosen: <code>{_e(json.dumps(chosen, default=str))}</code></p>"
            f"<table class='small'><tr>{head}</tr>{body}</table>")


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    def cell(v: Any) -> str:
        return _e(json.dumps(v, default=str)) if isinstance(v, dict | list) else _fmt(v)

    cells = "".join(f"<tr><th>{_e(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows)
    return f"<table class='small'>{cells}</table>"


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(str(value))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }}
h1 {{ margin-bottom: 0.2rem; }} .sub {{ color: #666; margin-top: 0; }}
.cards {{ display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }}
.card {{ border: 1px solid #ddd; border-radius: 8px; padding: 0.8rem 1.2rem; min-width: 9rem; }}
.card .v {{ font-size: 1.8rem; font-weight: 600; }} .card .k {{ color: #444; }}
.card .b {{ color: #888; font-size: 0.85rem; }}
.row {{ display: flex; gap: 1rem; flex-wrap: wrap; }}
figure {{ margin: 0.5rem 0; }} figure img {{ max-width: 100%; }} figcaption {{ color: #666; font-size: 0.85rem; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }}
table.small {{ font-size: 0.8rem; }} table.cm td {{ text-align: right; min-width: 6rem; }}
code {{ font-size: 0.8rem; word-break: break-all; }}
</style></head>
<body>
{body}
</body></html>
"""
