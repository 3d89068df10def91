"""Named errors. The API maps them to HTTP statuses in one place (``handlers/api.py``); the state machine's
Retry/Catch match the training errors by class name, which Lambda reports as ``errorType``."""

from __future__ import annotations


class ModelforgeError(Exception):
    """Base of every error this service raises on purpose."""


class InvalidRequestError(ModelforgeError):
    """A request is well-formed JSON but names something that cannot be used (HTTP 422)."""

    def __init__(self, field: str, reason: str, location: str = "body") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.location = location


class JobNotFoundError(ModelforgeError):
    """No job has that process_id (HTTP 404)."""


class ExecutionStartError(ModelforgeError):
    """The job item was written but its execution could not be started; the job has been marked failed."""


class JobTransitionError(ModelforgeError):
    """A status write was refused because it would move a job backwards or out of a terminal state."""


# ---- training errors: data problems are final, the state machine fails the job instead of retrying ----


class TrainingDataError(ModelforgeError):
    """The data cannot produce a model. Never retried."""


class NoTrainingDataError(TrainingDataError):
    """The machine has no processed telemetry in the requested range."""


class NoFailureEventsError(TrainingDataError):
    """The range holds no failure event, so a failure classifier has nothing to learn."""


class InsufficientDataError(TrainingDataError):
    """Too few rows, or too few failure events in the training or test period."""


class TelemetrySchemaError(TrainingDataError):
    """Required columns are missing or have the wrong type."""


class ArtifactIntegrityError(ModelforgeError):
    """A stored model's bytes do not match the sha256 recorded when it was written."""


# ---- registry and inference ----


class ModelNotFoundError(ModelforgeError):
    """No such model, version or champion (HTTP 404)."""


class PromotionConflictError(ModelforgeError):
    """Another promotion changed the champion first, or the version is not in a state that allows this (409)."""


class NoChampionError(ModelforgeError):
    """Predictions need a champion and the model has none yet (HTTP 404)."""
