"""Operating regimes (domain.regimes) and the feature recipe document (domain.recipe): found on training rows,
stored with the model, and applied the same way by /predict and the drift checks."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from modelforge.domain import xgb as xgb_tools
from modelforge.domain.drift import recent_features
from modelforge.domain.features import FeatureConfig
from modelforge.domain.inference import LoadedModel, predict, records_frame
from modelforge.domain.labeling import LabelingConfig
from modelforge.domain.pipeline import PipelineConfig, train_model
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.regimes import RegimeConfig, fit_regimes
from modelforge.domain.scoring import predict_scores
from modelforge.domain.search import SearchConfig
from modelforge.domain.telemetry import ValidationConfig
from modelforge.errors import ArtifactIntegrityError, IncompatibleRecordsError, TelemetrySchemaError
from modelforge.jobs import Indicator, TrainingOptions
from modelforge.logic.recipes import load_recipe
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import TrainRequest

CYCLE = 10
SETTINGS = ("altitude", "throttle")
POINTS = np.array([[0.0, 100.0], [20.0, 60.0], [35.0, 80.0]])  # three operating conditions


def engine(seed: int, cycles: int) -> pd.DataFrame:
    """Wears out towards its last cycle; each cycle flown at one of three conditions, which shift the sensors
    far more than the wear does."""
    rng = np.random.default_rng(seed)
    regime = rng.integers(0, 3, cycles)
    wear = np.linspace(0, 1, cycles) ** 2
    settings = POINTS[regime] + rng.normal(0, 0.05, (cycles, 2))
    return pd.DataFrame({
        "timestamp": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.arange(cycles) * CYCLE, unit="min"),
        "altitude": settings[:, 0], "throttle": settings[:, 1],
        "temperature": 500 + 40 * regime + 15 * wear + rng.normal(0, 1.0, cycles),
        "pressure": 40 - 6 * regime - 4 * wear + rng.normal(0, 0.3, cycles),
    })


@pytest.fixture(scope="module")
def fleet() -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    frames = {f"ENGINE-{i:02d}": engine(i, 150 + 9 * i) for i in range(12)}
    return frames, {name: np.array([frame["timestamp"].iloc[-1].value]) for name, frame in frames.items()}


def config(regimes: str | int = "auto") -> PipelineConfig:
    return PipelineConfig(
        labeling=LabelingConfig(window_minutes=30 * CYCLE, health_horizon_minutes=100 * CYCLE),
        features=FeatureConfig(windows_minutes=(5 * CYCLE,), statistics=("mean",), trend_window_minutes=None),
        search=SearchConfig(budget=1, max_rounds=60, nthread=1, min_precision=0.8),
        validation=ValidationConfig(min_rows=500),
        regimes=RegimeConfig(settings=SETTINGS, regimes=regimes))


@pytest.fixture(scope="module")
def trained(fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]):  # type: ignore[no-untyped-def]
    frames, events = fleet
    return train_model(frames, machine_name="FLEET", indicator="health", config=config(), events=events)


# ---------------------------------------------------------------- finding regimes


def test_auto_finds_the_operating_points_and_standardizes_each_sensor_within_its_regime(fleet) -> None:  # type: ignore[no-untyped-def]
    frames, _ = fleet
    model = fit_regimes(list(frames.values()), ["temperature", "pressure"], RegimeConfig(SETTINGS, "auto"))
    assert len(model.centers) == 3 and "k=3" in model.criterion
    frame = frames["ENGINE-03"]
    truth = np.argmin(((frame[list(SETTINGS)].to_numpy()[:, None] - POINTS[None]) ** 2).sum(-1), axis=1)
    assigned = model.assign(frame)
    # The same partition as the true conditions, whatever the clusters' order.
    assert len({(a, t) for a, t in zip(assigned, truth, strict=True)}) == 3
    pooled = pd.concat(frames.values())
    normalized = model.normalize(pooled)
    for regime in range(3):
        rows = model.assign(pooled) == regime
        assert normalized.loc[rows, "temperature"].mean() == pytest.approx(0, abs=1e-6)
        assert normalized.loc[rows, "temperature"].std(ddof=0) == pytest.approx(1, abs=1e-6)
    # The raw spread is dominated by the conditions; within a regime only wear and noise are left.
    assert pooled["temperature"].std() > 10 * pooled.groupby(model.assign(pooled))["temperature"].std().mean() / 3


def test_settings_that_only_jitter_around_one_condition_are_one_regime() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"altitude": rng.normal(0, 0.002, 3000), "throttle": np.full(3000, 100.0),
                          "temperature": rng.normal(500, 2, 3000)})
    model = fit_regimes([frame], ["temperature"], RegimeConfig(SETTINGS, "auto"))
    assert len(model.centers) == 1 and "k=1" in model.criterion


def test_a_requested_number_of_regimes_is_fitted_as_asked(fleet) -> None:  # type: ignore[no-untyped-def]
    frames, _ = fleet
    model = fit_regimes(list(frames.values()), ["temperature"], RegimeConfig(SETTINGS, 2))
    assert len(model.centers) == 2 and model.criterion == "k=2 as requested"


# ---------------------------------------------------------------- the recipe document


def test_the_recipe_document_round_trips_and_refuses_other_versions(trained) -> None:  # type: ignore[no-untyped-def]
    recipe = trained.recipe
    assert recipe is not None and recipe.regimes is not None and len(recipe.regimes.centers) == 3
    again = FeatureRecipe.from_json(recipe.to_json())
    assert again == recipe and again.feature_names == trained.feature_names
    assert set(recipe.input_columns) == {"temperature", "pressure", *SETTINGS}
    with pytest.raises(ValueError, match="version"):
        FeatureRecipe.from_json(recipe.to_json().replace(b'"version": 1', b'"version": 99'))
    with pytest.raises(ValueError, match="not a feature recipe"):
        FeatureRecipe.from_json(b'{"version": 1}')


def test_the_settings_are_not_features_and_the_regime_model_is_in_the_lineage(trained) -> None:  # type: ignore[no-untyped-def]
    assert not any(name.split("__")[0] in SETTINGS for name in trained.feature_names)
    regimes = trained.lineage["regimes"]
    assert regimes["settings"] == list(SETTINGS) and len(regimes["centers"]) == 3
    stored = xgb_tools.load(trained.model_bytes).attr("modelforge_lineage")
    assert stored is not None and '"regimes"' in stored


def test_predict_and_drift_rebuild_the_training_features_from_the_stored_recipe(fleet, trained) -> None:  # type: ignore[no-untyped-def]
    frames, _ = fleet
    frame = frames["ENGINE-05"]
    recipe = FeatureRecipe.from_json(trained.recipe.to_json())
    booster = xgb_tools.load(trained.model_bytes)
    model = LoadedModel(version="v1", indicator="health", booster=booster, feature_names=tuple(trained.feature_names),
                        sensors=recipe.input_columns, threshold=None, trained_at=None, recipe=recipe)
    records = [{**row, "timestamp": row["timestamp"].isoformat()} for row in frame.to_dict("records")]
    served = predict(model, records_frame(records, recipe.input_columns)).predictions
    expected = predict_scores(booster, trained.recipe.build(frame)[0])
    np.testing.assert_allclose(served, expected, rtol=1e-6)
    # The same features without the regime transform score differently: the transform is what is served.
    names_only = replace(model, recipe=None)
    assert not np.allclose(predict(names_only, records_frame(records, recipe.input_columns)).predictions, expected)
    drifted = recent_features({"ENGINE-05": frame}, trained.feature_names, recipe)
    np.testing.assert_allclose(drifted, trained.recipe.build(frame)[0], rtol=1e-6)


def test_records_without_the_operating_settings_are_refused(fleet, trained) -> None:  # type: ignore[no-untyped-def]
    frames, _ = fleet
    recipe = trained.recipe
    model = LoadedModel(version="v1", indicator="health", booster=xgb_tools.load(trained.model_bytes),
                        feature_names=tuple(trained.feature_names), sensors=recipe.input_columns, threshold=None,
                        trained_at=None, recipe=recipe)
    records = frames["ENGINE-01"].drop(columns=["throttle"]).head(5).assign(
        timestamp=lambda f: f["timestamp"].astype(str)).to_dict("records")
    with pytest.raises(IncompatibleRecordsError, match="throttle"):
        predict(model, records_frame(records, recipe.input_columns))


# ---------------------------------------------------------------- options


def test_a_setting_missing_from_the_data_names_the_option_and_the_column(fleet) -> None:  # type: ignore[no-untyped-def]
    frames, events = fleet
    bad = replace(config(), regimes=RegimeConfig(settings=("altitude", "mach"), regimes="auto"))
    with pytest.raises(TelemetrySchemaError, match=r"options\.operating_settings.*mach"):
        train_model(frames, machine_name="FLEET", indicator="health", config=bad, events=events)


def test_regimes_need_operating_settings_and_a_sane_number() -> None:
    body = {"machine_name": "M-1", "indicator": "health", "start_date": "2020-01-01", "end_date": "2020-02-01"}
    with pytest.raises(ValidationError, match=r"options\.regimes 'auto' needs options\.operating_settings"):
        TrainRequest.model_validate({**body, "options": {"regimes": "auto"}})
    with pytest.raises(ValidationError) as error:
        TrainRequest.model_validate({**body, "options": {"regimes": 0, "operating_settings": ["setting1"]}})
    assert ("options", "regimes") in {tuple(e["loc"][:2]) for e in error.value.errors()}
    with pytest.raises(ValidationError, match="must not repeat"):
        TrainingOptions.model_validate({"operating_settings": ["setting1", "setting1"], "regimes": "auto"})
    ok = TrainingOptions.model_validate({"operating_settings": ["setting1", "setting2"], "regimes": 6})
    assert ok.regimes == 6


# ---------------------------------------------------------------- reading the stored document back


class StoredBytes:
    """The models bucket as logic.recipes sees it: bytes by URI, checked against the recorded sha256."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        data = self.objects[uri]
        if hashlib.sha256(data).hexdigest() != expected_sha256:
            raise ArtifactIntegrityError(f"{uri} does not match its sha256")
        return data


def version_with(recipe_bytes: bytes | None, sha256: str | None = None) -> ModelVersion:
    uri = "s3://models/m.recipe.json"
    return ModelVersion(
        model_name=ModelName("FLEET", Indicator.HEALTH), version="v1", machine_name="FLEET",
        indicator=Indicator.HEALTH, artifact_uri="s3://models/m.ubj", artifact_sha256="0" * 64,
        recipe_uri=uri if recipe_bytes is not None else None,
        recipe_sha256=(sha256 or hashlib.sha256(recipe_bytes).hexdigest()) if recipe_bytes is not None else None)


def test_the_stored_recipe_is_read_back_checked_and_older_versions_have_none(trained) -> None:  # type: ignore[no-untyped-def]
    document = trained.recipe.to_json()
    store = StoredBytes({"s3://models/m.recipe.json": document})
    assert load_recipe(version_with(document), store) == trained.recipe
    assert load_recipe(version_with(None), store) is None  # rebuilt from its feature names, as before
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        load_recipe(version_with(document, sha256="f" * 64), store)
    broken = b'{"version": 1, "sensors": []}'
    with pytest.raises(ArtifactIntegrityError, match="feature recipe"):
        load_recipe(version_with(broken), StoredBytes({"s3://models/m.recipe.json": broken}))
