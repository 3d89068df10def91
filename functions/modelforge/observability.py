"""Logger, Tracer and Metrics, created once and imported everywhere else.

Powertools reads its own settings (service name, log level, tracing on/off) from the POWERTOOLS_* variables.
The one thing decided here is whether the X-Ray SDK is needed at all: Powertools' Tracer imports it whenever
it is created, even disabled, and outside Lambda the SDK's recorder also builds two botocore X-Ray clients for
centralized sampling, a quarter of a second of every cold import. Where Powertools turns tracing off for sure
(``POWERTOOLS_TRACE_DISABLED``, or not running in Lambda: tests, the local cloud, benchmarks), the Tracer
gets a provider that records nothing and the SDK is never imported. In Lambda with tracing on, the Tracer is
Powertools' own, X-Ray and auto-patching included, exactly as before.
"""

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

SERVICE_NAME = "modelforge"
METRICS_NAMESPACE = "Modelforge"


class _Untraced(BaseSegment):
    """A subsegment that goes nowhere."""

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class _NoTracing(BaseProvider):
    """The Tracer's provider where tracing is off: its decorators keep working, without the X-Ray SDK."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield _Untraced()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield _Untraced()

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def _tracing_is_off() -> bool:
    """Two of the cases where Powertools disables tracing itself; anything else is left to Powertools."""
    disabled = resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false"))
    return bool(disabled) or not os.getenv(constants.LAMBDA_TASK_ROOT_ENV)


logger = Logger(service=SERVICE_NAME)
tracer = (Tracer(service=SERVICE_NAME, disabled=True, provider=_NoTracing()) if _tracing_is_off()
          else Tracer(service=SERVICE_NAME))
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def emit_model_metric(name: str, value: float, *, model_name: str, unit: MetricUnit = MetricUnit.NoUnit) -> None:
    """One metric with the model as its dimension (``model_name``), flushed at once: the shared ``metrics``
    object gives every metric of an invocation the same dimensions, which a per-model figure must not share.
    Same namespace and service as ``metrics``."""
    with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE,
                       default_dimensions={"service": SERVICE_NAME}) as metric:
        metric.add_dimension(name="model_name", value=model_name)


def emit_retrain_metric(name: str, value: float, *, reason: str | None = None, outcome: str | None = None,
                        unit: MetricUnit = MetricUnit.Count) -> None:
    """A retraining metric, by ``reason`` and ``outcome`` when given (RetrainsTriggered, RetrainsEnded,
    RetrainDuration), else with the service's dimension alone (RetrainsFailed, RetrainsSucceeded,
    ModelsDriftedWithoutRetrain: what the runbook's alarms watch, which need one series each)."""
    with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE,
                       default_dimensions={"service": SERVICE_NAME}) as metric:
        if reason is not None:
            metric.add_dimension(name="reason", value=reason)
        if outcome is not None:
            metric.add_dimension(name="outcome", value=outcome)
