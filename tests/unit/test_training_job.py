"""The training step's use case (modelforge.logic.training_job) with in-memory fakes, and the handler's
mapping of settings into the pipeline's configuration."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from localcloud.demo_data import generate_machine_telemetry
from modelforge.adapters.dynamo import to_dynamo
from modelforge.adapters.model_registry import version_item
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.domain.pipeline import PipelineConfig
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.search import SearchConfig
from modelforge.errors import NoFailureEventsError, SettingsError
from modelforge.handlers.training import pipeline_config
from modelforge.jobs import Indicator, Job, JobStatus
from modelforge.logic.training_job import TrainingDependencies, TrainingTask, train_for_job
from modelforge.registry import ArtifactRef, ModelVersion
from modelforge.settings import TrainingSettings

PROCESS_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
NOW = datetime(2025, 9, 27, 10, 15, 0, tzinfo=UTC)
CONFIG = PipelineConfig(search=SearchConfig(budget=1, max_rounds=30, nthread=1))


@pytest.fixture(scope="module")
def telemetry() -> pd.DataFrame:
    return generate_machine_telemetry("MOTOBOMBA-007", days=30, seed=1).telemetry


@dataclass
class FakeJobs:
    job: Job

    def get(self, process_id: str) -> Job:
        assert process_id == self.job.process_id
        return self.job


@dataclass
class FakeTelemetry:
    frame: pd.DataFrame
    calls: list[tuple[str, date | None, date | None]] = field(default_factory=list)

    def read(self, machine_name: str, start: date | None, end: date | None) -> pd.DataFrame:
        self.calls.append((machine_name, start, end))
        return self.frame


def version_of(uri: str) -> str:
    """The VersionId the fake S3 gives an object: distinct per object, so a mix-up shows."""
    return "v-" + hashlib.sha256(uri.encode()).hexdigest()[:12]


@dataclass
class FakeArtifacts:
    fail_on_suffix: str | None = None
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ArtifactRef:
        if self.fail_on_suffix and key.endswith(self.fail_on_suffix):
            raise OSError(f"S3 refused {key}")
        uri = f"s3://models-bucket/{key}"
        self.objects[uri] = (data, content_type)
        return ArtifactRef(uri, hashlib.sha256(data).hexdigest(), version_of(uri))

    def delete(self, uri: str, version_id: str | None = None) -> None:
        assert version_id == version_of(uri)  # the version put returned: its bytes go, no delete marker
        self.deleted.append(uri)
        self.objects.pop(uri, None)


@dataclass
class FakeRegistry:
    fail: bool = False
    versions: list[ModelVersion] = field(default_factory=list)

    def put_version(self, version: ModelVersion) -> None:
        if self.fail:
            raise RuntimeError("ConditionalCheckFailed")
        self.versions.append(version)

    @property
    def items(self) -> list[dict[str, Any]]:
        """The versions as the models table would store them."""
        return [version_item(version) for version in self.versions]


def job(indicator: Indicator = Indicator.STATUS) -> Job:
    return Job(process_id=PROCESS_ID, indicator=indicator, machine_name="MOTOBOMBA-007", status=JobStatus.RUNNING,
               created_at=NOW, updated_at=NOW, start_date=date(2025, 1, 1), end_date=date(2025, 1, 30))


def deps(frame: pd.DataFrame, indicator: Indicator = Indicator.STATUS, artifacts: FakeArtifacts | None = None,
         registry: FakeRegistry | None = None) -> TrainingDependencies:
    return TrainingDependencies(jobs=FakeJobs(job(indicator)), telemetry=FakeTelemetry(frame),
                                artifacts=artifacts or FakeArtifacts(), registry=registry or FakeRegistry(),
                                model_key_prefix="model", code_revision="abc1234")


REGISTRY_ATTRIBUTES = {
    "model_name", "version", "machine_name", "machine_names", "failure_events", "options", "indicator",
    "process_id", "artifact_uri", "artifact_sha256", "model_format", "report_uri", "report_sha256", "profile_uri",
    "profile_sha256", "holdout_uri", "holdout_sha256", "artifact_version_id", "report_version_id",
    "profile_version_id", "holdout_version_id", "recipe_uri", "recipe_sha256", "recipe_version_id",
    "feature_names", "metrics", "baseline_metrics", "params", "data", "lineage", "feature_importance", "device",
    "code_version", "library_versions", "timings", "trained_at"}


def test_a_job_stores_model_report_and_profile_side_by_side_and_registers_them(telemetry: pd.DataFrame) -> None:
    d = deps(telemetry)
    outcome = train_for_job(TrainingTask(process_id=PROCESS_ID), d, CONFIG, now=lambda: NOW)

    stem = f"s3://models-bucket/model/{PROCESS_ID}/xgb_model_MOTOBOMBA-007_2025_09_27_10_15_00"  # the job's folder
    assert outcome.bucket_address == f"{stem}.ubj"
    assert outcome.model_id == "20250927T101500Z-0f8fad5b"
    objects = d.artifacts.objects  # type: ignore[attr-defined]
    assert set(objects) == {f"{stem}.ubj", f"{stem}.report.html", f"{stem}.profile.json", f"{stem}.holdout.parquet",
                            f"{stem}.recipe.json"}
    assert objects[f"{stem}.report.html"][1].startswith("text/html")
    assert objects[f"{stem}.report.html"][0].startswith(b"<!doctype html>")
    profile = json.loads(objects[f"{stem}.profile.json"][0])

    (version,) = d.registry.versions  # type: ignore[attr-defined]
    (item,) = d.registry.items  # type: ignore[attr-defined]
    assert set(item) == REGISTRY_ATTRIBUTES  # the item layout of every stored version
    assert version.model_name.key == item["model_name"] == "MOTOBOMBA-007#status"
    assert item["version"] == outcome.model_id == version.version
    assert version.decision_threshold == item["metrics"]["threshold"] and version.machines == ["MOTOBOMBA-007"]
    assert item["trained_at"] == NOW.isoformat() and item["options"] is None and item["failure_events"] == "rpm_drop"
    assert version_item(ModelVersion.model_validate(item)) == item  # what is stored reads back unchanged
    assert item["artifact_uri"] == f"{stem}.ubj" and item["report_uri"] == f"{stem}.report.html"
    assert item["profile_uri"] == f"{stem}.profile.json"
    assert item["holdout_uri"] == f"{stem}.holdout.parquet"
    holdout = pd.read_parquet(io.BytesIO(objects[f"{stem}.holdout.parquet"][0]))
    assert set(item["feature_names"]) < set(holdout.columns) and "target" in holdout.columns
    assert hashlib.sha256(objects[f"{stem}.holdout.parquet"][0]).hexdigest() == item["holdout_sha256"]
    for uri_key, sha_key in (("artifact_uri", "artifact_sha256"), ("report_uri", "report_sha256"),
                             ("profile_uri", "profile_sha256"), ("recipe_uri", "recipe_sha256")):
        assert item[sha_key] == hashlib.sha256(objects[item[uri_key]][0]).hexdigest()
    # Each artifact's S3 version is recorded with it, so reads fetch the version that was hashed.
    for kind in ("artifact", "report", "profile", "holdout", "recipe"):
        assert item[f"{kind}_version_id"] == version_of(item[f"{kind}_uri"]), kind
    assert version.stored_artifacts() == [version.artifact, version.report_artifact(), version.profile_artifact(),
                                          version.holdout_artifact(), version.recipe_artifact()]
    # The feature recipe document rebuilds exactly the model's features (no regimes for this job).
    recipe = FeatureRecipe.from_json(objects[f"{stem}.recipe.json"][0])
    assert recipe.feature_names == item["feature_names"] and recipe.regimes is None
    assert version.holdout_artifact().version_id == version_of(item["holdout_uri"])
    assert {"recall", "precision", "f1", "f2", "pr_auc", "roc_auc", "threshold", "events_caught_ahead",
            "events_total", "lead_minutes", "baseline_pr_auc"} <= set(item["metrics"])
    assert item["lineage"]["process_id"] == PROCESS_ID and item["code_version"] == "0.1.0+abc1234"
    assert item["data"]["start_date"] == "2025-01-01" and item["data"]["fingerprint"] == item["lineage"]["fingerprint"]
    assert item["device"] in ("cpu", "cuda") and "xgboost" in item["library_versions"]
    assert set(profile["features"]) == set(item["feature_names"])
    assert d.telemetry.calls == [("MOTOBOMBA-007", date(2025, 1, 1), date(2025, 1, 30))]  # type: ignore[attr-defined]
    to_dynamo(item)  # DynamoDB-storable (floats, None, nested dicts)
    json.dumps(item, allow_nan=False)


def test_a_registry_failure_leaves_no_artifact_behind(telemetry: pd.DataFrame) -> None:
    artifacts, registry = FakeArtifacts(), FakeRegistry(fail=True)
    with pytest.raises(RuntimeError, match="ConditionalCheckFailed"):
        train_for_job(TrainingTask(process_id=PROCESS_ID), deps(telemetry, artifacts=artifacts, registry=registry),
                      CONFIG, now=lambda: NOW)
    assert artifacts.objects == {} and len(artifacts.deleted) == 5  # model, report, profile, holdout, recipe


def test_a_registry_failure_leaves_no_version_and_no_delete_marker_in_a_versioned_bucket(
        telemetry: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """On moto's S3, versioned like the models bucket: the cleanup removes the versions it wrote. A plain
    DeleteObject would leave every byte in place under a delete marker."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models-bucket")
        s3.put_bucket_versioning(Bucket="models-bucket", VersioningConfiguration={"Status": "Enabled"})
        d = replace(deps(telemetry, registry=FakeRegistry(fail=True)),
                    artifacts=ModelArtifactStore("models-bucket", s3=s3))
        with pytest.raises(RuntimeError, match="ConditionalCheckFailed"):
            train_for_job(TrainingTask(process_id=PROCESS_ID), d, CONFIG, now=lambda: NOW)
        listing = s3.list_object_versions(Bucket="models-bucket")
        assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == [], listing


def test_a_failed_write_after_the_model_deletes_what_was_written(telemetry: pd.DataFrame) -> None:
    artifacts, registry = FakeArtifacts(fail_on_suffix=".profile.json"), FakeRegistry()
    with pytest.raises(OSError, match="refused"):
        train_for_job(TrainingTask(process_id=PROCESS_ID), deps(telemetry, artifacts=artifacts, registry=registry),
                      CONFIG, now=lambda: NOW)
    assert artifacts.objects == {} and [u.rsplit(".", 1)[-1] for u in artifacts.deleted] == ["html", "ubj"]
    assert registry.items == []


def test_a_health_job_completes_with_regression_metrics(telemetry: pd.DataFrame) -> None:
    d = deps(telemetry, indicator=Indicator.HEALTH)
    train_for_job(TrainingTask(process_id=PROCESS_ID), d, CONFIG, now=lambda: NOW)
    (item,) = d.registry.items  # type: ignore[attr-defined]
    assert item["model_name"] == "MOTOBOMBA-007#health"
    assert {"rmse", "mae", "r2", "baseline_rmse"} <= set(item["metrics"]) and "recall" not in item["metrics"]
    assert item["metrics"]["rmse"] < item["metrics"]["baseline_rmse"]


def test_a_data_error_propagates_by_name_and_writes_nothing(telemetry: pd.DataFrame) -> None:
    quiet = telemetry.copy()
    quiet["Eng_RPM_variation_percentage"] = quiet["Eng_RPM_variation_percentage"].clip(lower=-10)
    d = deps(quiet)
    with pytest.raises(NoFailureEventsError, match="no failure event"):
        train_for_job(TrainingTask(process_id=PROCESS_ID), d, CONFIG, now=lambda: NOW)
    assert d.artifacts.objects == {} and d.registry.items == []  # type: ignore[attr-defined]


ENV = {"JOBS_TABLE_NAME": "jobs", "MODELS_TABLE_NAME": "models", "DATA_BUCKET_NAME": "data",
       "MODELS_BUCKET_NAME": "models"}


def test_settings_map_into_the_pipeline_configuration() -> None:
    defaults = pipeline_config(TrainingSettings.from_env(ENV))
    assert defaults.search.strategy == "early_stopping" and defaults.labeling.window_minutes == 30
    assert defaults == PipelineConfig()  # the settings' defaults are the domain's defaults

    settings = TrainingSettings.from_env({**ENV, "SEARCH_STRATEGY": "grid", "SEARCH_BUDGET": "6",
                                          "MIN_PRECISION": "0.3", "SELECTION_METRIC": "f2",
                                          "HEALTH_HORIZON_MINUTES": "120", "LABEL_WINDOW_MINUTES": "45",
                                          "FAILURE_EPISODE_GAP_MINUTES": "10", "ALERT_LEAD_MINUTES": "20",
                                          "TRAINING_MEMORY_BUDGET_MB": "256", "MIN_TRAINING_ROWS": "1000",
                                          "TRAINING_DEVICE": "cpu", "CODE_REVISION": "abc"})
    config = pipeline_config(settings)
    assert (config.search.strategy, config.search.budget, config.search.min_precision) == ("grid", 6, 0.3)
    assert config.search.selection_metric == "f2" and config.search.device == "cpu"
    assert config.labeling.health_horizon_minutes == 120 and config.labeling.window_minutes == 45
    assert config.labeling.episode_gap_minutes == 10 and config.lead_minutes == 20
    assert config.memory_budget_mb == 256 and config.validation.min_rows == 1000


def test_bad_settings_fail_loudly_with_their_names() -> None:
    with pytest.raises(SettingsError, match="SEARCH_STRATEGY"):
        TrainingSettings.from_env({**ENV, "SEARCH_STRATEGY": "random"})
    with pytest.raises(SettingsError, match="MIN_PRECISION"):
        TrainingSettings.from_env({**ENV, "MIN_PRECISION": "1.5"})


def test_job_options_override_the_deployment_settings_and_zero_turns_the_trend_off() -> None:
    from modelforge.domain.pipeline import PipelineConfig
    from modelforge.jobs import TrainingOptions
    from modelforge.logic.training_job import apply_options

    base = PipelineConfig()
    assert apply_options(base, None) is base
    config = apply_options(base, TrainingOptions(label_window_minutes=300, health_horizon_minutes=1250,
                                                 feature_windows_minutes=[300, 600], feature_statistics=["slope"],
                                                 trend_window_minutes=0, min_precision=0.96, holdout="machines",
                                                 test_fraction=0.25))
    assert (config.labeling.window_minutes, config.labeling.health_horizon_minutes) == (300, 1250)
    assert config.labeling.drop_threshold_pct == base.labeling.drop_threshold_pct  # untouched
    assert config.features.windows_minutes == (300, 600) and config.features.statistics == ("slope",)
    assert config.features.trend_window_minutes is None
    assert config.search.min_precision == 0.96 and config.search.budget == base.search.budget
    assert (config.holdout, config.test_fraction) == ("machines", 0.25)
    only_windows = apply_options(base, TrainingOptions(feature_windows_minutes=[5]))
    assert only_windows.features.trend_window_minutes == base.features.trend_window_minutes
    assert only_windows.features.statistics == base.features.statistics
