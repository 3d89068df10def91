"""LocalCloud: starts moto, creates the stack from template.yaml, wires Lambda to the real handlers and
serves the HTTP API. Used by ``make run`` (``python -m localcloud``), the integration and the e2e tests."""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import requests

from localcloud.batch import LocalBatch, bridge_batch
from localcloud.events import ExecutionStatusEvents
from localcloud.http_api import LocalHttpApi, Route
from localcloud.moto_fidelity import restore_dynamodb_writes, serialize_dynamodb_writes
from localcloud.readiness import Readiness
from localcloud.runtime import LocalLambdaRuntime
from localcloud.schedules import Firing, LocalSchedules
from localcloud.template import REPO_ROOT, LocalStack, resolve_stack
from modelforge.adapters import aws as aws_clients

DEFAULT_HOST = "127.0.0.1"
DEFAULT_AWS_PORT = 5000
DEFAULT_API_PORT = 3000
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
LOCAL_ROLE_NAME = "modelforge-local-role"


class LocalCloud:
    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        aws_port: int = DEFAULT_AWS_PORT,
        api_port: int = DEFAULT_API_PORT,
        stack_name: str = "modelforge-local",
        region: str = "us-east-1",
        handler_overrides: Mapping[str, str] | None = None,
        environment_overrides: Mapping[str, Mapping[str, str]] | None = None,
        parameter_overrides: Mapping[str, Any] | None = None,
        state_dir: Path | None = None,
        echo_logs: bool = False,
        run_schedules: bool = False,
    ) -> None:
        self.host, self.aws_port, self.api_port = host, aws_port, api_port
        self.region = region
        self.stack: LocalStack = resolve_stack(
            stack_name=stack_name, region=region, parameter_overrides=dict(parameter_overrides or {})
        )
        # Tests swap a function's handler (a crashing one, say) or its settings; everything else is the template.
        for logical_id, handler in (handler_overrides or {}).items():
            spec = self.stack.functions[logical_id]
            self.stack.functions[logical_id] = replace(spec, handler=handler)
        for logical_id, extra in (environment_overrides or {}).items():
            spec = self.stack.functions[logical_id]
            self.stack.functions[logical_id] = replace(spec, environment={**spec.environment, **extra})
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="modelforge-local-"))
        self._echo_logs = echo_logs
        self._run_schedules = run_schedules  # fire rate(...) schedules on their period (off: only by hand)
        self._server: Any = None
        self._http: LocalHttpApi | None = None
        self._events: ExecutionStatusEvents | None = None
        self._saved_environment: dict[str, str] | None = None
        self._undo_moto_patches: list[Callable[[], None]] = []  # moto is patched process-wide while this cloud runs
        self.runtime: LocalLambdaRuntime | None = None
        self.batch: LocalBatch | None = None
        self.schedules: LocalSchedules | None = None
        # /health says "starting" until this is ready: at the end of start(), or, with start(ready=False),
        # when the caller has loaded its data and calls mark_ready().
        self.readiness = Readiness()
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # ------------------------------------------------------------------ addresses

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        port = self._http.port if self._http else self.api_port
        return f"http://{self.host}:{port}"

    def client_environment(self) -> dict[str, str]:
        """What a process needs to talk to this cloud as if it were AWS."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
        }

    def client(self, service: str) -> Any:
        """One session, and one client per service, for this cloud's life: a new Session loads botocore's
        endpoint and service data again (0.09-0.14 s of CPU a client here, 0.005 s from a warm session), which
        the tests paid on every call. Clients are thread-safe; a Session's client() is not, hence the lock."""
        with self._clients_lock:
            if self._session is None:
                self._session = boto3.session.Session(
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    aws_session_token="testing",
                    region_name=self.region,
                )
            if service not in self._clients:
                self._clients[service] = self._session.client(service, endpoint_url=self.aws_endpoint)
            return self._clients[service]

    @property
    def outputs(self) -> dict[str, str]:
        return {**self.stack.outputs, "ApiUrl": self.api_url, "AwsEndpointUrl": self.aws_endpoint}

    # ------------------------------------------------------------------ life cycle

    def start(self, *, ready: bool = True) -> LocalCloud:
        """Starts moto, creates the stack and serves the API. ``ready=False``: ``GET /health`` answers 503
        "starting" until ``mark_ready()`` (``python -m localcloud`` loads the demo data first)."""
        from moto.server import ThreadedMotoServer

        serialize_dynamodb_writes()
        self._undo_moto_patches.append(restore_dynamodb_writes)
        self._undo_moto_patches.append(_restore_moto_config())

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call is noise here
        # The interpreter logs every failed execution with its whole parse tree; /status and the execution
        # history say the same thing readably.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)

        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT from this process.
        self._saved_environment = dict(os.environ)
        os.environ.update(self.client_environment())
        os.environ["MOTO_PORT"] = str(self.aws_port)
        # Clients this process already made (the demo loader's) point at an earlier cloud's port.
        aws_clients.client.cache_clear()
        aws_clients.resource.cache_clear()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        self._server.start()
        requests.post(
            f"{self.aws_endpoint}/moto-api/config",
            timeout=10,
            json={
                "stepfunctions": {"execute_state_machine": True},
                "lambda": {"use_docker": False},
                "batch": {"use_docker": False},
            },
        ).raise_for_status()

        worker_environment = {
            **self.client_environment(),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            # Workers share this machine's cores (a Lambda environment has its own). OpenMP threads that spin
            # while they wait made XGBoost ~14x slower here when another process was busy (126 s vs 9 s for
            # one demo training); passive waiting costs nothing measurable when the cores are free.
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        if os.environ.get("PYTHONPATH"):
            worker_environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
        if os.environ.get("OMP_NUM_THREADS"):  # a benchmark on a shared machine caps XGBoost's threads
            worker_environment["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
        self.runtime = LocalLambdaRuntime(
            self.stack.functions, worker_environment, self.state_dir / "logs", echo_logs=self._echo_logs
        )
        self._undo_moto_patches.append(_dispatch_lambda_to(self.runtime))
        if self.stack.batch_job_definitions:  # BatchEnabled: jobs run as local processes (localcloud/batch.py)
            self.batch = LocalBatch(self.stack.batch_job_definitions, self.stack.batch_queues, worker_environment,
                                    lambda: self.client("logs"))
            self._undo_moto_patches.append(bridge_batch(self.batch))
        self._provision()

        routes = [
            Route(method, path, spec.name)
            for spec in self.stack.functions.values()
            for method, path in spec.http_routes
        ]
        self._events = ExecutionStatusEvents(
            self.client("stepfunctions"), [m.arn for m in self.stack.state_machines.values()],
            list(self.stack.functions.values()), self.runtime.invoke, self.stack.account_id, self.region)
        self._events.start()
        self.schedules = LocalSchedules(self.stack.schedules, self.runtime.invoke, self.stack.account_id,
                                        self.region, run=self._run_schedules,
                                        start_execution=self._start_scheduled_execution)
        self.schedules.start()
        self._http = LocalHttpApi(
            routes, self.runtime.invoke, self.host, self.api_port, self.stack.account_id, schedules=self.schedules,
            readiness=self.readiness,
        )
        self._http.start()
        if ready:
            self.mark_ready()
        return self

    def _start_scheduled_execution(self, state_machine_arn: str, payload: bytes) -> str:
        """What EventBridge Scheduler does for a state machine target: StartExecution with the target's Input.
        Scheduler sends no name, so Step Functions makes one up (a UUID); moto 5.2.5 would keep ``None`` instead,
        which becomes every run's id (``$$.Execution.Name``), so the second firing would collide."""
        started = self.client("stepfunctions").start_execution(stateMachineArn=state_machine_arn,
                                                               name=str(uuid.uuid4()), input=payload.decode())
        return str(started["executionArn"])

    def mark_ready(self) -> None:
        """The stack and its data are in place: ``GET /health`` now answers as the API function does."""
        self.readiness.mark_ready()

    def fire_schedule(self, name: str, *, wait: bool = True) -> Firing:
        """Fires one of the template's schedules now (see localcloud.schedules): by its logical id, e.g.
        RetrainSchedule, its rule's name, or its function's name or logical id."""
        if self.schedules is None:
            raise RuntimeError("the local cloud is not started")
        return self.schedules.fire(name, wait=wait)

    def stop(self) -> None:
        if self.schedules:
            self.schedules.stop()
        if self._events:
            self._events.stop()
        if self._http:
            self._http.stop()
        if self.runtime:
            self.runtime.shutdown()
        if self._server:
            # moto keeps its state per process, not per server: forget this stack so another can start.
            requests.post(f"{self.aws_endpoint}/moto-api/reset", timeout=10)
            self._server.stop()
            self._server = None
        with self._clients_lock:
            self._clients.clear()
        while self._undo_moto_patches:  # the process's moto as it was before start(): in-process mocks use it
            self._undo_moto_patches.pop()()
        if self._saved_environment is not None:
            os.environ.clear()
            os.environ.update(self._saved_environment)
            self._saved_environment = None
            aws_clients.client.cache_clear()
            aws_clients.resource.cache_clear()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ resources from the template

    def _provision_batch(self, role_arn: str) -> None:
        if self.stack.batch_job_definitions:
            _provision_batch_into(self, role_arn)

    def _provision(self) -> None:
        iam = self.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                }
            ],
        }
        role_arn = iam.create_role(RoleName=LOCAL_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]

        dynamodb = self.client("dynamodb")
        for table in self.stack.tables.values():
            props = table.properties
            arguments: dict[str, Any] = {
                "TableName": table.name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                arguments["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            dynamodb.create_table(**arguments)

        s3 = self.client("s3")
        for bucket in self.stack.buckets.values():
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

        lambda_ = self.client("lambda")
        for spec in self.stack.functions.values():
            # The code never runs in moto (invocations go to the runtime); the function exists so the AWS CLI
            # and the state machine see the same names as in AWS.
            code = io.BytesIO()
            with zipfile.ZipFile(code, "w") as archive:
                archive.writestr("README.txt", f"runs locally from {REPO_ROOT} as {spec.handler}")
            lambda_.create_function(
                FunctionName=spec.name,
                Runtime="python3.12",
                Role=role_arn,
                Handler=spec.handler,
                Code={"ZipFile": code.getvalue()},
                MemorySize=min(spec.memory_mb, 10240),
                Timeout=spec.timeout_s,
                Environment={"Variables": spec.environment},
            )

        self._provision_batch(role_arn)

        sfn = self.client("stepfunctions")
        for machine in self.stack.state_machines.values():
            sfn.create_state_machine(
                name=machine.name, definition=json.dumps(machine.definition), roleArn=role_arn
            )

        # The schedules exist where the AWS CLI looks (events list-rules, scheduler list-schedules); the local
        # cloud, not moto, fires them.
        events, scheduler = self.client("events"), self.client("scheduler")
        groups: set[str] = set()
        for schedule in self.stack.schedules.values():
            target_arn = schedule.target_arn or self.stack.functions[schedule.function_logical_id].arn
            state = "ENABLED" if schedule.enabled else "DISABLED"
            target: dict[str, Any] = {"Arn": target_arn}
            if schedule.input is not None:
                target["Input"] = schedule.input
            if schedule.kind == "Schedule":
                events.put_rule(Name=schedule.name, ScheduleExpression=schedule.expression, State=state)
                events.put_targets(Rule=schedule.name, Targets=[{"Id": schedule.function_logical_id, **target}])
            else:
                group = {"GroupName": schedule.group} if schedule.group else {}
                if schedule.group and schedule.group not in groups:
                    scheduler.create_schedule_group(Name=schedule.group)
                    groups.add(schedule.group)
                scheduler.create_schedule(Name=schedule.name, ScheduleExpression=schedule.expression, State=state,
                                          FlexibleTimeWindow={"Mode": "OFF"},
                                          Target={**target, "RoleArn": role_arn}, **group)


def _provision_batch_into(cloud: LocalCloud, role_arn: str) -> None:
    """The template's Batch queues and job definitions, in moto's Batch backend under their names (one local
    compute environment: the jobs run on this machine)."""
    batch = cloud.client("batch")
    environment = batch.create_compute_environment(computeEnvironmentName=f"{cloud.stack.stack_name}-local",
                                                   type="UNMANAGED", state="ENABLED",
                                                   serviceRole=role_arn)["computeEnvironmentArn"]
    for queue in cloud.stack.batch_queues.values():
        batch.create_job_queue(jobQueueName=queue.name, state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
    for spec in cloud.stack.batch_job_definitions.values():
        batch.register_job_definition(
            jobDefinitionName=spec.name, type="container", parameters=spec.parameters,
            timeout={"attemptDurationSeconds": spec.attempt_duration_s},
            containerProperties={"image": "local", "command": list(spec.command),
                                 "environment": [{"name": k, "value": v} for k, v in spec.environment.items()],
                                 "resourceRequirements": [{"type": "VCPU", "value": str(spec.vcpus)},
                                                          {"type": "MEMORY", "value": str(spec.memory_mib)}]})


def _restore_moto_config() -> Callable[[], None]:
    """What undoes the moto-api/config this cloud posts (moto keeps it process-wide)."""
    from moto.core.config import default_user_config

    config: dict[str, Any] = default_user_config  # type: ignore[assignment]
    saved = copy.deepcopy(config)

    def restore() -> None:
        config.clear()
        config.update(saved)

    return restore


def _dispatch_lambda_to(runtime: LocalLambdaRuntime) -> Callable[[], None]:
    """moto's Docker-less Lambda backend echoes its input; make it run our handlers instead. Function errors
    are reported as AWS reports them (X-Amz-Function-Error + errorType), which Step Functions matches in
    Retry/Catch; raising here instead would break the execution inside moto. Returns what undoes it."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    own = LambdaSimpleBackend.__dict__.get("invoke")

    def invoke(
        self: Any, function_name: str, qualifier: str, body: Any, headers: Any, response_headers: Any
    ) -> str:
        payload = body if isinstance(body, bytes) else (body or "").encode()
        result = runtime.invoke(function_name, payload)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        return result.payload.decode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]

    def restore() -> None:
        if own is None:
            del LambdaSimpleBackend.invoke
        else:
            LambdaSimpleBackend.invoke = own  # type: ignore[method-assign]

    return restore
