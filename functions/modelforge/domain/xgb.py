"""XGBoost plumbing: the device (GPU when there is one, chosen at run time), parameters, and serialization.

``device="auto"`` trains on CUDA when this XGBoost build has CUDA *and* a GPU is actually usable, else on the
CPU. XGBoost silently falls back to the CPU when asked for a GPU it cannot see, so the probe reads back the
device the trained booster really used instead of trusting that no exception was raised.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from typing import Any

import numpy as np
import xgboost as xgb

MODEL_FORMAT = "ubj"  # XGBoost's binary JSON: loadable without pickle, stable across versions

BASE_PARAMS: dict[str, Any] = {"tree_method": "hist", "max_bin": 256}


@cache
def cuda_available() -> bool:
    """True when XGBoost can train on a visible GPU (checked once per process)."""
    if not xgb.build_info().get("USE_CUDA", False):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = xgb.DMatrix(np.array([[0.0], [1.0]]), label=np.array([0.0, 1.0]))
            booster = xgb.train({"device": "cuda", "tree_method": "hist", "verbosity": 0}, probe,
                                num_boost_round=1)
        return booster_device(booster) == "cuda"
    except xgb.core.XGBoostError:
        return False


def booster_device(booster: xgb.Booster) -> str:
    config = json.loads(booster.save_config())
    device = str(config["learner"]["generic_param"].get("device", "cpu"))
    return "cuda" if device.startswith("cuda") else "cpu"


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` or ``cpu`` depending on this machine; ``cuda`` without a GPU -> ``cpu``."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {requested!r}")
    if requested == "cpu":
        return "cpu"
    return "cuda" if cuda_available() else "cpu"


def dmatrix(x: np.ndarray, y: np.ndarray | None, feature_names: list[str],
            weight: np.ndarray | None = None) -> xgb.DMatrix:
    return xgb.DMatrix(x, label=y, weight=weight, feature_names=feature_names, nthread=-1)


def training_matrix(x: np.ndarray, y: np.ndarray, feature_names: list[str], weight: np.ndarray | None = None,
                    *, quantized: bool = False, ref: xgb.DMatrix | None = None) -> xgb.DMatrix:
    """The matrix a search trains on, built once and reused by every candidate. ``quantized``: a
    QuantileDMatrix (one byte per value instead of a float copy; ``ref`` is the training matrix whose bins an
    evaluation matrix shares), else a DMatrix."""
    if quantized:
        return xgb.QuantileDMatrix(x, label=y, weight=weight, feature_names=feature_names, ref=ref,
                                   max_bin=BASE_PARAMS["max_bin"], nthread=-1)
    return xgb.DMatrix(x, label=y, weight=weight, feature_names=feature_names, nthread=-1)


def predict(booster: xgb.Booster, x: np.ndarray, feature_names: list[str] | None = None,
            rounds: int | None = None) -> np.ndarray:
    """Predictions straight from the float32 matrix (columns in ``feature_names`` order), without a copy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CUDA booster predicting from host memory says so
        if rounds is None:
            return np.asarray(booster.inplace_predict(x))
        return np.asarray(booster.inplace_predict(x, iteration_range=(0, rounds)))


def serialize(booster: xgb.Booster, attributes: dict[str, Any] | None = None) -> bytes:
    """The model in XGBoost's own binary JSON, with ``attributes`` (JSON-encoded) stored inside it."""
    for key, value in (attributes or {}).items():
        booster.set_attr(**{key: value if isinstance(value, str) else json.dumps(value, default=str)})
    return bytes(booster.save_raw(raw_format=MODEL_FORMAT))


def load(model_bytes: bytes) -> xgb.Booster:
    """Kept for the training code's callers; the one loader is ``domain.scoring.load_booster``."""
    from modelforge.domain.scoring import load_booster

    return load_booster(model_bytes)


def scale_pos_weight(y: np.ndarray, weight: np.ndarray | None = None) -> float:
    w = np.ones(len(y)) if weight is None else weight
    positives = float(w[y > 0].sum())
    negatives = float(w[y <= 0].sum())
    return negatives / positives if positives else 1.0
