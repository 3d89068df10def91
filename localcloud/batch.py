"""AWS Batch on the local cloud: ``batch:submitJob.sync`` bridged, and each job run as a local process.

moto 5.2.5's interpreter hands the ASL's PascalCase parameters (JobName, JobQueue, ...) to boto3's
``submit_job``, which wants camelCase, and its ``BatchSimpleBackend`` marks jobs succeeded without running
them (docs: ../shared/notes/local-cloud.md). Here, without touching the ASL:

* the interpreter's Batch task submits with camelCase parameters, and reports a finished job the way AWS does
  (the DescribeJobs item in PascalCase, a failed job as ``States.TaskFailed`` with that item as the Cause);
* a submitted job goes SUBMITTED -> RUNNABLE -> RUNNING -> SUCCEEDED/FAILED in moto's Batch backend (what
  ``aws batch describe-jobs`` against the local endpoint shows), running the job definition's command from
  template.yaml as a local process with its environment, its memory (a watchdog on RSS: exit 137 and
  "OutOfMemoryError: Container killed due to memory usage") and its attempt duration ("Job attempt duration
  exceeded timeout"); its output goes to the CloudWatch Logs stream Batch would write (/aws/batch/job);
* a job needing more vCPUs than its queue's compute environments' MaxvCpus (from template.yaml: 64 for the
  Fargate and GPU ones, 256 for the large EC2 one) stays RUNNABLE until its queue's JobStateTimeLimitActions
  cancels it, with the queue's reason, as Batch does when no compute environment can place it;
* aborting the execution (or TerminateJob) kills the process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from localcloud.runtime import _rss_bytes, _terminate
from localcloud.template import BatchJobDefinitionSpec, BatchQueueSpec

POLL_SECONDS = 0.1
# A job asking more vCPUs than its queue's compute environments' MaxvCpus (the template's, BatchQueueSpec) can
# never be placed and waits RUNNABLE. Below it, a job runs here whatever this machine's core count (it is slower,
# not refused). This is the limit for a queue whose environments the template does not say.
PLACEABLE_VCPUS = 64
LOG_GROUP = "/aws/batch/job"
ESSENTIAL_EXITED = "Essential container in task exited"
ATTEMPT_TIMED_OUT = "Job attempt duration exceeded timeout"
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"


def pascal_case(value: Any) -> Any:
    """A DescribeJobs item as Step Functions shows it (jobId -> JobId), which the ASL reads."""
    if isinstance(value, list):
        return [pascal_case(v) for v in value]
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal_case(v) for k, v in value.items()}
    return value


def camel_case(value: Any) -> Any:
    if isinstance(value, list):
        return [camel_case(v) for v in value]
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: (v if k == "Parameters" else camel_case(v)) for k, v in value.items()}
    return value


class LocalBatch:
    """Runs the jobs moto's Batch backend is given, with the template's job definitions and queues."""

    def __init__(self, definitions: Mapping[str, BatchJobDefinitionSpec], queues: Mapping[str, BatchQueueSpec],
                 base_environment: Mapping[str, str], logs_client: Callable[[], Any]) -> None:
        self._definitions = {spec.name: spec for spec in definitions.values()}
        self._queues = {spec.name: spec for spec in queues.values()}
        self._base_environment = dict(base_environment)
        self._logs_client = logs_client
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def definition(self, name: str) -> BatchJobDefinitionSpec:
        return self._definitions[name]

    def replace_definition(self, spec: BatchJobDefinitionSpec) -> None:
        """Tests run a crashing command, a smaller memory or a shorter attempt under the template's name."""
        self._definitions[spec.name] = spec

    def start(self, job: Any) -> None:
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"local-batch-{job.job_id}").start()

    def shutdown(self) -> None:
        with self._lock:
            for process in self._processes.values():
                _terminate(process)

    # ------------------------------------------------------------ one job

    def _run(self, job: Any) -> None:
        spec = self._definitions[job.job_definition.name]
        queue = self._queues.get(job.job_queue.name)
        job.status = "SUBMITTED"
        time.sleep(POLL_SECONDS)
        job.status = "RUNNABLE"
        placeable = queue.max_vcpus if queue is not None and queue.max_vcpus is not None else PLACEABLE_VCPUS
        if spec.vcpus > placeable and not self._wait_runnable(job, queue):
            return
        job.status = "STARTING"
        job.job_started_at = _now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        job.status = "RUNNING"
        exit_code, reason = self._execute(job, spec)
        job.exit_code = exit_code
        job.job_stopped_reason = reason
        job._mark_stopped(success=exit_code == 0)

    def _wait_runnable(self, job: Any, queue: BatchQueueSpec | None) -> bool:
        """No environment can place the job: it waits RUNNABLE until its queue cancels it (or forever)."""
        waited_since = time.monotonic()
        while not job.stop:
            if queue and queue.runnable_timeout_s is not None and \
                    time.monotonic() - waited_since >= queue.runnable_timeout_s:
                job.job_stopped_reason = queue.runnable_reason or "cancelled while RUNNABLE"
                break
            time.sleep(POLL_SECONDS)
        if job.job_stopped_reason is None:
            job.job_stopped_reason = "terminated while RUNNABLE"
        job._mark_stopped(success=False)
        return False

    def _execute(self, job: Any, spec: BatchJobDefinitionSpec) -> tuple[int, str]:
        parameters = {**spec.parameters, **job.parameters}
        command = [parameters.get(part[5:], part) if part.startswith("Ref::") else part for part in spec.command]
        if command[0] in ("python", "python3"):
            command[0] = sys.executable  # the container's python is this project's interpreter here
        environment = {**self._base_environment, **spec.environment,
                       "AWS_BATCH_JOB_ID": job.job_id, "AWS_BATCH_JQ_NAME": job.job_queue.name,
                       "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with self._lock:
            self._processes[job.job_id] = process
        lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(process, lines), daemon=True)
        reader.start()
        reason = self._watch(job, spec, process)
        reader.join(timeout=5)
        with self._lock:
            self._processes.pop(job.job_id, None)
        self._ship_logs(job._stream_name, lines)
        code = process.returncode if process.returncode is not None else 137
        return (137 if reason in (OUT_OF_MEMORY, ATTEMPT_TIMED_OUT) or code < 0 else code), reason

    def _watch(self, job: Any, spec: BatchJobDefinitionSpec, process: subprocess.Popen[bytes]) -> str:
        deadline = time.monotonic() + spec.attempt_duration_s
        limit_bytes = spec.memory_mib * 1024 * 1024
        while process.poll() is None:
            if job.stop:
                _terminate(process)
                return job.job_stopped_reason or "terminated"
            if time.monotonic() > deadline:
                _terminate(process)
                return ATTEMPT_TIMED_OUT
            if _rss_bytes(process.pid) > limit_bytes:
                _terminate(process)
                return OUT_OF_MEMORY
            time.sleep(POLL_SECONDS)
        return ESSENTIAL_EXITED

    def _ship_logs(self, stream: str, lines: list[str]) -> None:
        logs = self._logs_client()
        with contextlib.suppress(Exception):
            logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        stamp = int(time.time() * 1000)
        events = [{"timestamp": stamp, "message": line} for line in lines if line.strip()][-5000:]
        if events:
            logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)


def _collect(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        lines.append(raw.decode(errors="replace").rstrip("\n"))


def _now() -> Any:
    from datetime import datetime

    return datetime.now()


def bridge_batch(local: LocalBatch) -> Callable[[], None]:
    """Patches moto (process-wide) so Batch tasks and jobs behave as above; returns what undoes it."""
    from moto.batch.models import Job
    from moto.batch_simple.models import BatchSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as service,
    )

    saved: dict[str, Any] = {"sdk": aws_sdk.StateTaskServiceAwsSdk._eval_service_task,
                             "finish": BatchSimpleBackend._mark_job_as_finished, "details": Job._container_details,
             "submit": service.StateTaskServiceBatch._eval_service_task,
             "sync": service.StateTaskServiceBatch._build_sync_resolver}

    def mark_job_as_finished(self: Any, include_start_attempt: bool, job: Any) -> None:
        self.backend._jobs[job.job_id] = job
        local.start(job)

    def container_details(self: Any) -> dict[str, Any]:
        details: dict[str, Any] = saved["details"](self)
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        return details

    def eval_service_task(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any],
                          state_credentials: Any) -> None:
        client = service.boto_client_for(region=resource_runtime_part.region, service="batch",
                                         state_credentials=state_credentials)
        response = client.submit_job(**camel_case(normalised_parameters))
        env.stack.append({"JobId": response["jobId"], "JobName": response["jobName"], "JobArn": response["jobArn"]})

    def build_sync_resolver(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any],
                            state_credentials: Any) -> Callable[[], Any]:
        client = service.boto_client_for(service="batch", region=resource_runtime_part.region,
                                         state_credentials=state_credentials)
        job_id = env.stack.pop()["JobId"]
        finished = threading.Event()

        def terminate_on_abort() -> None:
            # The interpreter stops polling when the execution is stopped; Step Functions then terminates the
            # job (.sync), which this does for it.
            while not finished.wait(POLL_SECONDS * 5):
                if not env.is_running():
                    client.terminate_job(jobId=job_id, reason="the Step Functions execution was stopped")
                    return

        threading.Thread(target=terminate_on_abort, daemon=True, name=f"abort-{job_id}").start()

        def resolve() -> Any:
            (job,) = client.describe_jobs(jobs=[job_id])["jobs"]
            if job["status"] in ("SUCCEEDED", "FAILED"):
                finished.set()
            if job["status"] == "SUCCEEDED":
                return pascal_case(job)
            if job["status"] == "FAILED":
                details: Any = service.TaskFailedEventDetails(
                    resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type(),
                    error=service.StatesErrorNameType.StatesTaskFailed.to_name(), cause=json.dumps(pascal_case(job)))
                raise service.FailureEventException(service.FailureEvent(
                    env=env, error_name=service.StatesErrorName(typ=service.StatesErrorNameType.StatesTaskFailed),
                    event_type=service.HistoryEventType.TaskFailed,
                    event_details=service.EventDetails(taskFailedEventDetails=details)))  # type: ignore[typeddict-item]
            return None

        return resolve

    def eval_sdk_task(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any],
                      state_credentials: Any) -> None:
        """aws-sdk:cloudwatchlogs (ReadBatchLog): boto3 names the service "logs" and wants camelCase; Step
        Functions answers in PascalCase."""
        if self.resource.api_name != "cloudwatchlogs":
            saved["sdk"](self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        client = service.boto_client_for(region=resource_runtime_part.region, service="logs",
                                         state_credentials=state_credentials)
        response = getattr(client, self._get_boto_service_action())(**camel_case(normalised_parameters))
        response.pop("ResponseMetadata", None)
        env.stack.append(pascal_case(response))

    aws_sdk.StateTaskServiceAwsSdk._eval_service_task = eval_sdk_task  # type: ignore[method-assign]
    BatchSimpleBackend._mark_job_as_finished = mark_job_as_finished  # type: ignore[method-assign]
    Job._container_details = container_details  # type: ignore[method-assign]
    service.StateTaskServiceBatch._eval_service_task = eval_service_task  # type: ignore[method-assign]
    service.StateTaskServiceBatch._build_sync_resolver = build_sync_resolver  # type: ignore[method-assign]

    def restore() -> None:
        aws_sdk.StateTaskServiceAwsSdk._eval_service_task = saved["sdk"]  # type: ignore[method-assign]
        BatchSimpleBackend._mark_job_as_finished = saved["finish"]  # type: ignore[method-assign]
        Job._container_details = saved["details"]  # type: ignore[method-assign]
        service.StateTaskServiceBatch._eval_service_task = saved["submit"]  # type: ignore[method-assign]
        service.StateTaskServiceBatch._build_sync_resolver = saved["sync"]  # type: ignore[method-assign]
        local.shutdown()

    return restore
