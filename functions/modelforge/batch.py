"""The training step as an AWS Batch job: ``python -m modelforge.batch <process_id>``.

The same use case as the Lambda handler (``handlers.training``): same dependencies, same outputs, same named
errors. The state machine's ``submitJob.sync`` task passes only the process id (container overrides are capped
at 8 KiB), and the model's id and address come back on the job item (``JobStore.record_outcome``), which the
state machine's ReadBatchOutcome reads. What differs is the host: every vCPU Batch gave the container
(``nthread``), CUDA when a GPU is visible (``device`` auto, which the search records in the model's lineage),
and ``host: batch`` in the lineage.

Exit status: 0 on success; 1 with ``<ErrorClass>: <message>`` as the last line on stderr for a named error
(the state machine's Catch turns the job's status reason and log tail into the job's error_message); an
uncaught crash exits 1 with Python's traceback last. Nothing half-written: ``train_for_job`` deletes what it
wrote when a later write fails, and a job killed mid-write leaves only its own folder for the reconciler.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence

from modelforge.adapters.job_store import JobStore
from modelforge.errors import ModelforgeError
from modelforge.handlers.training import build_dependencies
from modelforge.logic.training_job import TrainingTask, train_for_job
from modelforge.observability import logger
from modelforge.settings import TrainingSettings


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m modelforge.batch <process_id>", file=sys.stderr)
        return 2
    task = TrainingTask(process_id=argv[0])
    settings = TrainingSettings.from_env()
    config = settings.pipeline_config()
    if settings.training_nthread is None:  # the Lambda's default is "every core"; here it is every vCPU given
        config = dataclasses.replace(config, search=dataclasses.replace(config.search, nthread=os.cpu_count() or 0))
    dependencies = dataclasses.replace(build_dependencies(settings), host="batch")
    logger.append_keys(process_id=task.process_id)
    try:
        outcome = train_for_job(task, dependencies, config)
        JobStore(settings.jobs_table_name).record_outcome(task.process_id, outcome.model_id, outcome.bucket_address)
    except ModelforgeError as error:
        logger.exception("training failed", extra={"error_type": type(error).__name__})
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    # stdout's last line is the outcome (ids and an S3 URI), for whoever reads the job's log.
    print(json.dumps(outcome.model_dump()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
