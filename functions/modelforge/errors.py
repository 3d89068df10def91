"""Every named error of the service, in one module that imports nothing (any layer may raise them).

Where each one ends up:

* **HTTP-mapped** (``handlers/http_errors.py``, for the API and the predict function): ``InvalidRequestError``
  422, ``JobNotFoundError`` / ``ModelNotFoundError`` / ``NoChampionError`` 404, ``PromotionConflictError`` /
  ``ArtifactIntegrityError`` 409 (``ForeignArtifactError`` among them; ``OverrideRequiredError`` too, a
  ``PromotionConflictError``), ``TooManyJobsError`` 429, ``ExecutionStartError`` 503. ``IncompatibleRecordsError``
  reaches the client as a 422 too, re-raised as an ``InvalidRequestError`` on ``records`` by ``logic/predict.py``.
* **Seen by the state machine by name**: Lambda reports an error's class name as ``errorType``. The training
  state machine's Retry lists only transient Lambda and DynamoDB errors, never one of these (a test checks
  that no ``TrainingDataError`` is retried), and its Catch (``States.ALL``) writes ``"<class name>: <message>"``
  into the failed job's ``error_message`` for whatever the training and gate functions raise:
  ``TrainingDataError`` and its subclasses above all, but also, say, ``ArtifactIntegrityError`` or
  ``SettingsError``. Renaming one changes what ``GET /status`` shows, not how the state machine behaves.
* **Not from ModelforgeError**: these keep the built-in base they were born with, which callers and tests
  catch them by:
  ``SettingsError`` (a ``RuntimeError``: configuration, raised at a handler's entry); ``DataImportError``
  (``ValueError``: the import CLI and ``FailureEventStore`` report it; its tests check ``issubclass(...,
  ValueError)``); ``NotEnoughEventsError`` (``ValueError``: internal to the search, turned into
  ``InsufficientDataError`` by the pipeline); ``IncompatibleRecordsError`` (``ValueError``); and
  ``DriftCheckFailedError`` (``RuntimeError``: fails the drift function's invocation, so the event goes to its
  failure queue and alarm).
"""

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


class ComputeUnavailableError(InvalidRequestError):
    """``POST /train`` asked for a compute (``batch``, ``gpu``) this stack does not deploy (HTTP 422 on
    ``compute``, through InvalidRequestError's mapping)."""


class JobNotFoundError(ModelforgeError):
    """No job has that process_id (HTTP 404)."""


class TooManyJobsError(ModelforgeError):
    """``POST /train`` while ``MAX_JOBS_IN_FLIGHT`` jobs are pending or running: refused before anything is
    written, so the caller retries later instead of queueing work the reserved training concurrency would
    throttle and fail (HTTP 429 with Retry-After)."""

    def __init__(self, in_flight: int, limit: int, retry_after_seconds: int) -> None:
        super().__init__(f"{in_flight} training jobs are pending or running, and this deployment runs at most "
                         f"{limit} at once; retry in {retry_after_seconds} s")
        self.in_flight = in_flight
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


class ExecutionStartError(ModelforgeError):
    """The job item was written but its execution could not be started; the job has been marked failed."""


class JobTransitionError(ModelforgeError):
    """A status write was refused because it would move a job backwards or out of a terminal state."""


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


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


class DriftDataError(TrainingDataError):
    """The recent data cannot be compared with the model's training data (no rows, missing sensors)."""


class NotEnoughEventsError(ValueError):
    """The rows cannot be cut so that both sides hold a failure."""


class DataImportError(ValueError):
    """The input cannot be turned into the data contract; the message names the column or machine."""


class ArtifactIntegrityError(ModelforgeError):
    """A stored model's bytes do not match the sha256 recorded when it was written."""


class ForeignArtifactError(ArtifactIntegrityError):
    """A registry item names an object outside the models bucket. Refused before any read: a matching sha256
    proves only that the bytes are consistent with the record, and anyone who can write the record could point
    it at a bucket they own. An ``ArtifactIntegrityError``, so every caller refuses it the same way (409, and
    the prediction cache keeps serving the model it verified)."""


# ---- registry and inference ----


class ModelNotFoundError(ModelforgeError):
    """No such model, version or champion (HTTP 404)."""


class PromotionConflictError(ModelforgeError):
    """Another promotion changed the champion first, or the version is not in a state that allows this (409)."""


class OverrideRequiredError(PromotionConflictError):
    """A manual promotion names a version the gate rejected or never decided on: only an explicit override, with
    a reason, may make it champion (409, like any promotion the version's state refuses)."""


class NoChampionError(ModelforgeError):
    """Predictions need a champion and the model has none yet (HTTP 404)."""


class IncompatibleRecordsError(ValueError):
    """The records lack what the model was trained on."""


# ---- drift checks ----


class DriftCheckFailedError(RuntimeError):
    """A by-hand drift check (DriftFunction) could not check its champion; the error is recorded on it."""


class MissingArtifactError(LookupError):
    """A registry version registered before that kind of artifact was stored with every model."""


# ---- retraining ----


class TriggerNotFoundError(ModelforgeError):
    """No such trigger record or retraining run (HTTP 404)."""


class TriggerTransitionError(ModelforgeError):
    """A trigger is not in a status that allows this change (it never moves backwards)."""


class RetrainItemError(RuntimeError):
    """One model of a retraining run could not be decided on (its item fails; the map tolerates a share)."""
