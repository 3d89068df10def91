"""Warm latency of the predict function against a bare ``Booster.inplace_predict`` on the same rows.

The predict path adds request validation, feature building from raw records (rolling windows), the champion
cache check, one structured log line per request and the capture of its predictions (to moto's S3). The arms
(the handler with a ``records`` body, with the same rows as MLflow's ``dataframe_split``, and the bare
predict) run in this process, in turn, on the same model and the same rows; moto stands in for DynamoDB and
S3 (in-process, no network), and the cache's registry refresh interval is left at its default, as in
production. Writes benchmarks/results/predict.json with ``overhead_ratio`` per batch size.

    python -m benchmarks.predict
"""

from __future__ import annotations

import io
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.timing import alternated_ms

RESULTS = Path(__file__).parent / "results" / "predict.json"
BATCH_SIZES = (1, 10, 100, 1000)
REPEATS = 60
FLUSH_SECONDS = 0.5


def _event(body: dict[str, Any]) -> dict[str, Any]:
    return {"version": "2.0", "routeKey": "POST /predict", "rawPath": "/predict", "rawQueryString": "",
            "headers": {"content-type": "application/json"}, "isBase64Encoded": False, "body": json.dumps(body),
            "requestContext": {"http": {"method": "POST", "path": "/predict", "sourceIp": "127.0.0.1"},
                               "requestId": "bench", "stage": "$default", "routeKey": "POST /predict"}}


def main() -> None:
    # As in the local cloud's workers: OpenMP threads that spin while waiting distort every timing on a shared
    # 2-core machine (a 1-row inplace_predict measured 23 ms with spinning waits, 0.3 ms without). Set before
    # xgboost loads its OpenMP runtime.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import xgboost as xgb
    from moto import mock_aws

    from localcloud.demo_data import generate_machine_telemetry
    from localcloud.template import resolve_stack
    from modelforge.domain.features import build_features
    from modelforge.domain.inference import records_frame, sensors_of

    stack = resolve_stack()
    environment = stack.functions["PredictFunction"].environment
    os.environ.update(environment)
    # The capture buffer flushes inside the timed loop at every batch size: at 1,000 records its row bound
    # (the default, 50,000) is reached every 50 requests; at smaller batches its age bound is set to
    # FLUSH_SECONDS here (the deployed default, 60 s, would flush 120 times less often than that).
    os.environ["CAPTURE_FLUSH_SECONDS"] = str(FLUSH_SECONDS)
    machine = generate_machine_telemetry("MOTOBOMBA-001", days=20, seed=1)
    frame = machine.telemetry.dropna().reset_index(drop=True)
    sensors = [c for c in frame.columns if c != "timestamp"]
    x, names = build_features(frame, sensors)
    labels = (frame["Vibration_RMS_mm_s"] > frame["Vibration_RMS_mm_s"].quantile(0.95)).to_numpy(dtype=float)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 0},
                        xgb.DMatrix(x, label=labels, feature_names=names), num_boost_round=200)

    with mock_aws():
        _register_champion(stack, environment, bytes(booster.save_raw(raw_format="ubj")), names)

        from modelforge.handlers.predict import lambda_handler
        from modelforge.observability import logger

        # The log lines are produced and formatted (their cost counts), into memory instead of a terminal.
        logger.registered_handler.setStream(io.StringIO())  # type: ignore[attr-defined]

        context = SimpleNamespace(function_name="predict", memory_limit_in_mb=1024, aws_request_id="bench",
                                  invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:predict")
        rows = []
        for batch in BATCH_SIZES:
            window = frame.iloc[:batch]
            records = json.loads(window.assign(timestamp=window["timestamp"].astype(str)).to_json(orient="records"))
            split = json.loads(window.assign(timestamp=window["timestamp"].astype(str)).to_json(orient="split"))
            bodies = {"records": {"records": records}, "dataframe_split": {"dataframe_split": split}}
            events = {form: _event({"machine_name": "MOTOBOMBA-001", "indicator": "status", **body})
                      for form, body in bodies.items()}
            for event in events.values():
                first = lambda_handler(event, context)  # cold for this batch: warms every code path
                assert first["statusCode"] == 200, first
            bare_x = np.ascontiguousarray(build_features(records_frame(records, sensors_of(names)),
                                                         sensors_of(names))[0], dtype=np.float32)
            booster.inplace_predict(bare_x)
            objects_before = _capture_objects(environment)
            (records_ms, records_mean), (split_ms, split_mean), (bare_ms, bare_mean) = alternated_ms([
                lambda e=events["records"]: lambda_handler(e, _fresh(context)),
                lambda e=events["dataframe_split"]: lambda_handler(e, _fresh(context)),
                lambda m=bare_x: booster.inplace_predict(m)], REPEATS)
            rows.append({"batch_size": batch, "handler_ms": round(records_ms, 3),
                         "handler_split_ms": round(split_ms, 3), "bare_inplace_predict_ms": round(bare_ms, 3),
                         "overhead_ratio": round(records_ms / bare_ms, 1),
                         "overhead_ratio_split": round(split_ms / bare_ms, 1),
                         "mean_handler_ms": round(records_mean, 3), "mean_handler_split_ms": round(split_mean, 3),
                         "mean_bare_ms": round(bare_mean, 3),
                         "mean_overhead_ratio": round(records_mean / bare_mean, 1),
                         "mean_overhead_ratio_split": round(split_mean / bare_mean, 1),
                         "capture_objects_written_in_loop": _capture_objects(environment) - objects_before})

    _write_results(rows, features=len(names))


_REQUESTS = iter(range(10**9))


def _fresh(context: SimpleNamespace) -> SimpleNamespace:
    """The context of a new request: its own request id, as Lambda gives each (capture objects are named by
    the first request they hold)."""
    return SimpleNamespace(**{**vars(context), "aws_request_id": f"bench-{next(_REQUESTS)}"})


def _capture_objects(environment: dict[str, str]) -> int:
    import boto3

    listing = boto3.client("s3").list_objects_v2(Bucket=environment["CAPTURE_BUCKET_NAME"], Prefix="capture/")
    return int(listing.get("KeyCount", 0))


def _register_champion(stack: Any, environment: dict[str, str], artifact: bytes, names: list[str]) -> None:
    """The benchmark's model as the champion of MOTOBOMBA-001/status, in moto's table and bucket."""
    import boto3

    from modelforge.adapters.model_registry import ModelRegistry
    from modelforge.adapters.model_store import ModelArtifactStore
    from modelforge.jobs import Indicator
    from modelforge.registry import ModelName, ModelVersion

    table = stack.tables["ModelsTable"]
    boto3.client("dynamodb").create_table(TableName=table.name, KeySchema=table.properties["KeySchema"],
                                          AttributeDefinitions=table.properties["AttributeDefinitions"],
                                          BillingMode="PAY_PER_REQUEST")
    boto3.client("s3").create_bucket(Bucket=environment["MODELS_BUCKET_NAME"])
    # Where /predict captures each request's predictions (on by default, as deployed): without the bucket each
    # capture would fail, and the failure's handling would be timed instead of the write.
    boto3.client("s3").create_bucket(Bucket=environment["CAPTURE_BUCKET_NAME"])
    stored = ModelArtifactStore(environment["MODELS_BUCKET_NAME"]).put("model/bench.ubj", artifact)
    registry = ModelRegistry(table.name)
    name, version = ModelName("MOTOBOMBA-001", Indicator.STATUS), "20260101T000000Z-00000001"
    registry.put_version(ModelVersion(model_name=name, version=version, machine_name="MOTOBOMBA-001",
                                      indicator=Indicator.STATUS, artifact_uri=stored.uri,
                                      artifact_sha256=stored.sha256, artifact_version_id=stored.version_id,
                                      feature_names=names, metrics={"threshold": 0.5}, trained_at=datetime.now(UTC)))
    registry.promote(name, version, reason="benchmark", by="bench", now=datetime.now(UTC))


def _write_results(rows: list[dict[str, Any]], *, features: int) -> None:
    result = {
        "what": "warm PredictFunction handler (validation, features from raw records, champion cache, one log "
                "line per request, the capture buffered and flushed to moto's S3 inside the timed loop) vs bare "
                "Booster.inplace_predict on the same feature rows; handler_ms with a 'records' body, "
                "handler_split_ms with MLflow's 'dataframe_split'; medians, and means (which carry the flushes)",
        "capture_flush": {"rows": "CaptureConfig.flush_rows (default)", "seconds": FLUSH_SECONDS},
        "model": {"trees": 200, "max_depth": 6, "features": features},
        "repeats": REPEATS, "statistic": "median",
        "batches": rows,
        "overhead_ratio": {str(r["batch_size"]): r["overhead_ratio"] for r in rows},
        "overhead_ratio_split": {str(r["batch_size"]): r["overhead_ratio_split"] for r in rows},
        "mean_overhead_ratio": {str(r["batch_size"]): r["mean_overhead_ratio"] for r in rows},
        "mean_overhead_ratio_split": {str(r["batch_size"]): r["mean_overhead_ratio_split"] for r in rows},
        "load_average_1_5_15_after": [round(v, 2) for v in os.getloadavg()],  # a shared machine: how busy it was
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'batch':>6} {'records ms':>11} {'split ms':>9} {'bare ms':>9} {'ratio':>7} {'split':>7} "
          f"{'mean ratio':>10} {'mean split':>10} {'flushes':>7}")
    for r in rows:
        print(f"{r['batch_size']:>6} {r['handler_ms']:>11.2f} {r['handler_split_ms']:>9.2f} "
              f"{r['bare_inplace_predict_ms']:>9.3f} {r['overhead_ratio']:>7.1f} {r['overhead_ratio_split']:>7.1f} "
              f"{r['mean_overhead_ratio']:>10.1f} {r['mean_overhead_ratio_split']:>10.1f} "
              f"{r['capture_objects_written_in_loop']:>7}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
