"""The training pipeline end to end on small generated data (modelforge.domain.pipeline.train_model)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from localcloud.demo_data import DemoMachine, generate_machine_telemetry
from modelforge.domain import xgb as xgb_tools
from modelforge.domain.features import build_features
from modelforge.domain.labeling import timestamps_ns
from modelforge.domain.pipeline import PipelineConfig, TrainedModel, fingerprint, train_model
from modelforge.domain.search import SearchConfig
from modelforge.domain.telemetry import clean_telemetry
from modelforge.errors import InsufficientDataError, NoFailureEventsError, NoTrainingDataError

VARIATION = "Eng_RPM_variation_percentage"
CONFIG = PipelineConfig(search=SearchConfig(budget=2, max_rounds=150, nthread=1))
STATUS_KEYS = {"recall", "precision", "f1", "f2", "pr_auc", "roc_auc", "threshold", "confusion_matrix",
               "events_total", "events_caught", "events_caught_ahead", "lead_minutes", "false_alarms_per_day",
               "baseline_recall", "baseline_precision", "baseline_pr_auc", "baseline_f2"}


@pytest.fixture(scope="module")
def machine() -> DemoMachine:
    return generate_machine_telemetry("MOTOBOMBA-001", days=30, seed=1)


@pytest.fixture(scope="module")
def status_model(machine: DemoMachine) -> TrainedModel:
    return train_model(machine.telemetry, machine_name="MOTOBOMBA-001", indicator="status", config=CONFIG)


@pytest.fixture(scope="module")
def health_model(machine: DemoMachine) -> TrainedModel:
    return train_model(machine.telemetry, machine_name="MOTOBOMBA-001", indicator="health", config=CONFIG)


def test_status_model_beats_the_trivial_baseline_on_the_held_out_period(status_model: TrainedModel) -> None:
    m = status_model.metrics
    assert set(m) >= STATUS_KEYS
    assert 0 < m["threshold"] < 1
    assert m["pr_auc"] > 10 * m["baseline_pr_auc"]
    assert m["f2"] > m["baseline_f2"]
    assert m["recall"] >= 0.5 and m["precision"] >= 0.3
    assert m["events_total"] >= 1 and m["events_caught_ahead"] <= m["events_caught"] <= m["events_total"]
    cm = m["confusion_matrix"]
    assert cm["tp"] + cm["fp"] + cm["tn"] + cm["fn"] == m["rows"] == status_model.data["rows_test"]
    assert status_model.baseline_metrics["recall"] == 1.0  # it flags everything


def test_threshold_comes_from_validation_not_from_the_test_period(status_model: TrainedModel, machine: DemoMachine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    search = status_model.params["search"]
    assert status_model.params["threshold"] == search["validation"]["threshold"] == status_model.metrics["threshold"]
    assert search["strategy"] == "early_stopping" and search["fits"] == 3  # budget 2 + the refit

    # The same numbers would agree if all three came from the test period. So recompute both thresholds
    # independently, with the shipped model: on the validation cut of the rows the search was given, and on the
    # test period. Without a refit the shipped model is the one validated, so the two can be compared.
    from modelforge.domain import search as search_module
    from modelforge.domain.evaluation import choose_threshold
    from modelforge.domain.scoring import load_booster, predict_scores
    from modelforge.domain.splitting import validation_split

    given: dict[str, np.ndarray] = {}
    searching = search_module._Search.__init__

    def spy(self: Any, x: np.ndarray, y: np.ndarray, t: np.ndarray, *args: Any, **kwargs: Any) -> None:
        given.update(x=x, y=y, t=t)
        searching(self, x, y, t, *args, **kwargs)
        given["search_validation"] = self.val_rows

    monkeypatch.setattr(search_module._Search, "__init__", spy)
    config = replace(CONFIG, search=replace(CONFIG.search, refit=False))
    model = train_model(machine.telemetry, machine_name="MOTOBOMBA-001", indicator="status", config=config)
    assert not model.data["sampled"]  # unweighted rows: the threshold needs no sample weights to recompute
    assert given["t"].max() < int(pd.Timestamp(model.data["split_time"]).value)  # the search saw no test row

    booster, chosen = load_booster(model.model_bytes), model.metrics["threshold"]
    _, validation = validation_split(given["t"], given["y"], fraction=config.search.validation_fraction,
                                     purge_minutes=config.labeling.window_minutes)
    assert np.array_equal(validation, given["search_validation"])  # the cut is the search's own
    on_validation = choose_threshold(given["y"][validation], predict_scores(booster, given["x"][validation]),
                                     metric=config.search.selection_metric, min_precision=config.search.min_precision)
    on_test = choose_threshold(model.evaluation.y_true, predict_scores(booster, model.evaluation.x),
                               metric=config.search.selection_metric, min_precision=config.search.min_precision)
    assert abs(on_validation.threshold - on_test.threshold) > 1e-3, "this data cannot tell the two apart"
    assert chosen == pytest.approx(on_validation.threshold, abs=1e-9)
    assert model.params["threshold"] == chosen


def test_test_period_is_after_training_and_purged(status_model: TrainedModel, machine: DemoMachine) -> None:
    split = pd.Timestamp(status_model.data["split_time"])
    last_train = pd.Timestamp(status_model.profile["last_timestamp"])
    assert last_train < split - pd.Timedelta(minutes=30)
    assert pd.Timestamp(int(status_model.evaluation.timestamps_ns[0]), unit="ns", tz="UTC") == split
    assert status_model.data["rows_purged_at_split"] > 0
    rows_kept = (status_model.data["rows_train"] + status_model.data["rows_test"]
                 + status_model.data["rows_purged_at_split"])
    assert rows_kept == status_model.data["rows_usable"]


def test_model_file_is_xgboost_ubj_with_lineage_and_reproduces_the_predictions(status_model: TrainedModel,
                                                                                machine: DemoMachine) -> None:
    assert status_model.model_format == "ubj" and status_model.model_bytes[:1] == b"{"  # UBJSON, not pickle
    booster = xgb_tools.load(status_model.model_bytes)
    lineage = json.loads(booster.attr("modelforge_lineage"))
    assert lineage["fingerprint"] == status_model.data["fingerprint"]
    assert lineage["machine_name"] == "MOTOBOMBA-001" and "xgboost" in lineage["library_versions"]
    assert lineage["device"] == status_model.params["device"] == xgb_tools.resolve_device("auto")
    assert float(booster.attr("modelforge_threshold")) == status_model.metrics["threshold"]

    clean = clean_telemetry(machine.telemetry, machine_name="M")
    x, names = build_features(clean.frame, clean.sensor_columns)
    rows = np.searchsorted(timestamps_ns(clean.frame), status_model.evaluation.timestamps_ns)
    np.testing.assert_allclose(xgb_tools.predict(booster, x[rows], names), status_model.evaluation.predicted,
                               rtol=1e-6)
    assert names == status_model.feature_names == list(status_model.profile["features"])


def test_lineage_carries_what_the_caller_knows(machine: DemoMachine) -> None:
    small = replace(CONFIG, search=replace(CONFIG.search, budget=1, max_rounds=20))
    trained = train_model(machine.telemetry, machine_name="M", indicator="status", config=small,
                          lineage={"process_id": "job-1", "code_version": "0.1.0+abc"})
    assert trained.lineage["process_id"] == "job-1" and trained.lineage["code_version"] == "0.1.0+abc"
    assert json.loads(xgb_tools.load(trained.model_bytes).attr("modelforge_lineage"))["process_id"] == "job-1"


def test_health_model_is_a_regressor_judged_by_regression_metrics(health_model: TrainedModel) -> None:
    m = health_model.metrics
    assert {"rmse", "mae", "r2", "mae_near_failure", "baseline_rmse", "baseline_mae", "events_caught_ahead"} <= set(m)
    assert "recall" not in m and health_model.params["threshold"] is None
    assert m["rmse"] < m["baseline_rmse"] and m["mae"] < m["baseline_mae"]
    assert m["r2"] > 0
    assert health_model.evaluation.y_true.max() <= 240  # capped at the horizon
    assert health_model.data["rows_purged_at_split"] > 0


def test_data_without_failures_fails_with_a_message_that_says_so(machine: DemoMachine) -> None:
    quiet = machine.telemetry.copy()
    quiet[VARIATION] = quiet[VARIATION].clip(lower=-10)
    for indicator in ("status", "health"):
        with pytest.raises(NoFailureEventsError, match=r"no failure event .* \(the lowest is -10\.0%\)"):
            train_model(quiet, machine_name="M", indicator=indicator, config=CONFIG)


def test_no_failure_in_the_test_period_is_insufficient_data(machine: DemoMachine) -> None:
    data = machine.telemetry.copy()
    late = data["timestamp"] >= data["timestamp"].quantile(0.7)
    data.loc[late, VARIATION] = data.loc[late, VARIATION].clip(lower=-10)
    with pytest.raises(InsufficientDataError, match="no failure event in its test period"):
        train_model(data, machine_name="M", indicator="status", config=CONFIG)


def test_empty_range_is_no_training_data() -> None:
    with pytest.raises(NoTrainingDataError):
        train_model(pd.DataFrame(), machine_name="M", indicator="status", config=CONFIG)


def test_invalid_rows_are_counted_and_a_memory_budget_samples_far_rows_only(machine: DemoMachine) -> None:
    data = machine.telemetry.copy()
    data.loc[data.index[:7], "Vibration_RMS_mm_s"] = -3.0
    data.loc[data.index[7:10], VARIATION] = np.nan
    tight = replace(CONFIG, memory_budget_mb=1.0, search=replace(CONFIG.search, budget=1))
    trained = train_model(data, machine_name="M", indicator="status", config=tight)
    d = trained.data
    assert d["rows_dropped_impossible"] == 7 and d["rows_dropped_missing_key"] == 3
    assert d["impossible_by_column"] == {"Vibration_RMS_mm_s": 7}
    assert d["sampled"] and d["rows_after_sampling"] < d["rows_before_sampling"] == d["rows_train"]
    assert 0 < d["far_rows_kept_fraction"] < 1
    assert trained.metrics["pr_auc"] > trained.metrics["baseline_pr_auc"]


def test_fingerprint_changes_with_the_data(machine: DemoMachine) -> None:
    frame = machine.telemetry.iloc[:1000]
    changed = frame.copy()
    changed.iloc[5, 2] += 0.001
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) != fingerprint(changed)


def test_unknown_indicator_is_refused(machine: DemoMachine) -> None:
    with pytest.raises(ValueError, match="indicator"):
        train_model(machine.telemetry, machine_name="M", indicator="vibes", config=CONFIG)
