"""The HTTP API (API Gateway HTTP API, payload 2.0), built on Powertools' event handler. Each route's
arguments are validated from its signature (``handlers/resolver.py``: the markers ``Query``, ``Path``,
``Header`` take Powertools' arguments), and the OpenAPI document at /openapi.json is Powertools', generated
from the same signatures and models when first asked for.

No `from __future__ import annotations` here: the resolver reads the route annotations at run time to tell a
body model from a query parameter."""


import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge import __version__
from modelforge.adapters.executions import ExecutionHistory, ExecutionStarter
from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.adapters.telemetry import TelemetryCatalog
from modelforge.adapters.trigger_store import TriggerStore
from modelforge.handlers.http_errors import error_responses, register_error_handlers, resolve_json
from modelforge.handlers.resolver import Header, LazyResolver, Path, Query
from modelforge.jobs import Indicator, JobStatus
from modelforge.logic import jobs_api, models_api, retrain_runs
from modelforge.observability import logger, metrics, tracer
from modelforge.schemas import (
    MACHINE_NAME_PATTERN,
    ChampionResponse,
    HealthResponse,
    JobListResponse,
    JobStatusResponse,
    MachineListResponse,
    ModelListResponse,
    ProcessId,
    PromoteRequest,
    PromoteResponse,
    ResolveTriggersRequest,
    ResolveTriggersResponse,
    RetrainRequest,
    RetrainRunResponse,
    RetrainStartResponse,
    TrainRequest,
    TrainResponse,
    TriggerListResponse,
)
from modelforge.settings import ApiSettings
from modelforge.triggers import TriggerStatus

app = LazyResolver()  # each route's validators built on its first call, the OpenAPI document when asked for
app.enable_swagger(path="/swagger", title="modelforge", version=__version__,
                   description="Train failure-prediction models for one machine, asynchronously.")


IDEMPOTENCY_HEADER = "idempotency-key"
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"  # a run is its execution's name: the API's UUIDs, the scheduler's ids


class KeyedSubmitter:
    """``POST /train`` with an Idempotency-Key, through Powertools' idempotency utility. The utility (and its
    DynamoDB persistence layer) is imported and set up on the first keyed request, not at every cold start:
    most requests carry no key."""

    def __init__(self, settings: ApiSettings, jobs: JobStore, catalog: TelemetryCatalog,
                 executions: ExecutionStarter) -> None:
        self._settings, self._jobs, self._catalog, self._executions = settings, jobs, catalog, executions
        self._submit: Callable[..., TrainResponse] | None = None
        self._config: Any = None  # IdempotencyConfig

    def __call__(self, submission: dict[str, Any], lambda_context: LambdaContext | None = None) -> TrainResponse:
        if self._submit is None:
            self._submit = self._build()
        if lambda_context is not None:
            self._config.register_lambda_context(lambda_context)  # the record expires with the invocation
        return self._submit(submission=submission)

    def _build(self) -> Callable[..., TrainResponse]:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        settings = self._settings
        # The caller and their key name the submission (a key is the caller's own: another caller's identical
        # key is another submission, and can neither replay nor block theirs); the body must match what was
        # first sent with that key.
        self._config = IdempotencyConfig(event_key_jmespath="[caller, key]", payload_validation_jmespath="body",
                                         expires_after_seconds=settings.idempotency_ttl_seconds)

        @idempotent_function(data_keyword_argument="submission", config=self._config,
                             persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name),
                             output_serializer=PydanticSerializer(TrainResponse))
        def submit_once(submission: dict[str, Any]) -> TrainResponse:
            # Raising (a 429, a 422, a 503) deletes the record Powertools made, so a retry of the key runs again.
            request = TrainRequest.model_validate(submission["body"])
            return jobs_api.submit_training(request, jobs=self._jobs, catalog=self._catalog,
                                            executions=self._executions, max_in_flight=settings.max_jobs_in_flight,
                                            compute_config=settings.compute_config())

        return submit_once


@dataclass(frozen=True)
class Services:
    settings: ApiSettings
    jobs: JobStore
    catalog: TelemetryCatalog
    executions: ExecutionStarter
    registry: ModelRegistry
    artifacts: ModelArtifactStore
    submit_once: Callable[..., TrainResponse]  # a KeyedSubmitter
    history: ExecutionHistory | None = None  # GET /status's current_step and steps
    triggers: TriggerStore | None = None  # the retraining routes
    retrain_executions: ExecutionStarter | None = None


@cache
def build_services(settings: ApiSettings) -> Services:
    """Once per warm container: clients and table handles are reused across invocations."""
    jobs = JobStore(settings.jobs_table_name)
    catalog = TelemetryCatalog(settings.data_bucket_name, settings.processed_data_prefix)
    executions = ExecutionStarter(settings.state_machine_arn)
    return Services(settings=settings, jobs=jobs, catalog=catalog, executions=executions,
                    registry=ModelRegistry(settings.models_table_name),
                    artifacts=ModelArtifactStore(settings.models_bucket_name),
                    submit_once=KeyedSubmitter(settings, jobs, catalog, executions), history=ExecutionHistory(),
                    triggers=TriggerStore(settings.triggers_table_name),
                    retrain_executions=ExecutionStarter(settings.retrain_state_machine_arn))


def services() -> Services:
    services: Services = app.context["services"]
    return services


# ---------------------------------------------------------------- routes


@app.post("/train", summary="Start training a model for one machine", tags=["training"],
          responses=error_responses(HTTPStatus.CONFLICT, HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                    HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE))
@tracer.capture_method
def train(
    request: TrainRequest,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=256,
                                                  description="Retries with the same key and body return the "
                                                  "same job instead of starting another. Keys are per caller "
                                                  "(IAM principal or JWT subject).")] = None,
) -> TrainResponse:
    s = services()
    if idempotency_key is None:
        response = jobs_api.submit_training(request, jobs=s.jobs, catalog=s.catalog, executions=s.executions,
                                            max_in_flight=s.settings.max_jobs_in_flight,
                                            compute_config=s.settings.compute_config())
    else:
        response = s.submit_once(submission={"caller": _caller(), "key": idempotency_key,
                                             "body": request.model_dump(mode="json")},
                                 lambda_context=app.lambda_context)
    metrics.add_metric(name="TrainingJobsSubmitted", unit=MetricUnit.Count, value=1)
    return response


@app.get("/status/<process_id>", summary="A training job's state", tags=["training"],
         responses=error_responses(HTTPStatus.NOT_FOUND))
@tracer.capture_method
def status(process_id: Annotated[ProcessId, Path(description="The id POST /train returned")]) -> JobStatusResponse:
    s = services()
    return jobs_api.get_job_status(process_id, jobs=s.jobs, registry=s.registry, executions=s.executions,
                                   progress=s.history)


@app.get("/jobs", summary="Training jobs, newest first", tags=["training"])
@tracer.capture_method
def jobs(
    machine_name: Annotated[str | None, Query(pattern=MACHINE_NAME_PATTERN)] = None,
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> JobListResponse:
    s = services()
    return jobs_api.list_jobs(jobs=s.jobs, machine_name=machine_name, status=status, limit=limit,
                              next_token=next_token)


@app.get("/machines", summary="Machines with processed data, and their data range", tags=["data"])
@tracer.capture_method
def machines() -> MachineListResponse:
    return jobs_api.list_machines(catalog=services().catalog)


@app.get("/models", summary="Model versions of a machine, newest first", tags=["registry"])
@tracer.capture_method
def models(
    machine_name: Annotated[str, Query(pattern=MACHINE_NAME_PATTERN)],
    indicator: Annotated[Indicator | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ModelListResponse:
    s = services()
    return models_api.list_models(registry=s.registry, machine_name=machine_name, indicator=indicator,
                                  limit=limit, links=s.artifacts)


@app.get("/models/<machine_name>/<indicator>", summary="The champion and its promotion history",
         tags=["registry"], responses=error_responses(HTTPStatus.NOT_FOUND))
@tracer.capture_method
def champion(
    machine_name: Annotated[str, Path(pattern=MACHINE_NAME_PATTERN)],
    indicator: Annotated[Indicator, Path()],
) -> ChampionResponse:
    s = services()
    return models_api.get_champion(registry=s.registry, machine_name=machine_name, indicator=indicator,
                                   links=s.artifacts)


@app.post("/models/<machine_name>/<indicator>/promote", summary="Promote a version (or roll back to one)",
          tags=["registry"], responses=error_responses(HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT,
                                                       HTTPStatus.UNSUPPORTED_MEDIA_TYPE))
@tracer.capture_method
def promote(
    machine_name: Annotated[str, Path(pattern=MACHINE_NAME_PATTERN)],
    indicator: Annotated[Indicator, Path()],
    request: PromoteRequest,
) -> PromoteResponse:
    s = services()
    return models_api.promote_version(request, registry=s.registry, artifacts=s.artifacts,
                                      machine_name=machine_name, indicator=indicator, caller=_caller())


# ---------------------------------------------------------------- retraining (logic.retrain_runs)


@app.post("/retrain", summary="Start a retraining run: one model, or every champion", tags=["retraining"],
          responses={HTTPStatus.ACCEPTED.value: {"description": "The run started",
                                                 "content": {"application/json": {"model": RetrainStartResponse}}},
                     **error_responses(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, HTTPStatus.SERVICE_UNAVAILABLE)})
@tracer.capture_method
def retrain(request: RetrainRequest) -> tuple[RetrainStartResponse, int]:
    s = services()
    started = retrain_runs.start_retrain(request, registry=s.registry, triggers=_triggers(s),
                                         executions=_retrain_executions(s))
    return started, HTTPStatus.ACCEPTED


@app.get("/retrains/<run_id>", summary="A retraining run: its status, summary and triggers", tags=["retraining"],
         responses=error_responses(HTTPStatus.NOT_FOUND))
@tracer.capture_method
def retrain_run(run_id: Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The id POST /retrain "
                                            "returned")]) -> RetrainRunResponse:
    return retrain_runs.get_run(run_id, triggers=_triggers(services()))


@app.get("/triggers", summary="Retraining triggers, newest first", tags=["retraining"])
@tracer.capture_method
def triggers(
    status: Annotated[TriggerStatus | None, Query()] = None,
    machine_name: Annotated[str | None, Query(pattern=MACHINE_NAME_PATTERN)] = None,
    run_id: Annotated[str | None, Query(pattern=RUN_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TriggerListResponse:
    return retrain_runs.list_triggers(triggers=_triggers(services()), status=status, machine_name=machine_name,
                                      run_id=run_id, limit=limit)


@app.post("/triggers/resolve", summary="Mark failed triggers resolved by hand, with who and why",
          tags=["retraining"], responses=error_responses(HTTPStatus.UNSUPPORTED_MEDIA_TYPE))
@tracer.capture_method
def resolve_triggers(request: ResolveTriggersRequest) -> ResolveTriggersResponse:
    return retrain_runs.resolve_triggers(request, triggers=_triggers(services()), caller=_caller())


def _triggers(s: Services) -> TriggerStore:
    assert s.triggers is not None, "build_services gives every deployment its triggers table"
    return s.triggers


def _retrain_executions(s: Services) -> ExecutionStarter:
    assert s.retrain_executions is not None, "build_services gives every deployment its retrain state machine"
    return s.retrain_executions


def _caller() -> str:
    """Who is asking, as API Gateway's authorizer saw it (IAM principal or JWT subject): recorded with a
    promotion, and the scope of an Idempotency-Key."""
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    return str(iam.get("userArn") or claims.get("sub") or "unauthenticated")


@app.get("/health", summary="Liveness", tags=["operations"])
def health() -> HealthResponse:
    return HealthResponse(version=__version__)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(app.get_openapi_json_schema(title="modelforge", version=__version__))
    return document


register_error_handlers(app)


# ---------------------------------------------------------------- entry point


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app.append_context(services=build_services(ApiSettings.from_env()))
    return resolve_json(app, event, context)
