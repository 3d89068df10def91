"""``modelforge-import``: loads a real dataset, or a user's own export, into the data bucket.

The same path for every source: read the file, convert it with a :class:`~modelforge.domain.importing.
ColumnMapping` (pure, validates everything first), then write each machine's telemetry through
``TelemetryStore`` (what training reads) and its recorded failures through ``FailureEventStore``. A
conversion error therefore writes nothing; a machine's import replaces its telemetry and its events.

    modelforge-import cmapss train_FD001.txt --bucket my-data-bucket
    modelforge-import table pumps.csv --machine-column pump_id --timestamp-column read_at \\
        --rename temp_c=Motor_Temperature_C --drop operator_note \\
        --events repairs.csv --events-machine-column pump_id --events-timestamp-column failed_at

``--endpoint-url`` points both boto3 and awswrangler at the local cloud (``make run`` prints it) or at
LocalStack. Exit status: 0 imported, 2 bad input or options (the message says which), 1 an AWS error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from modelforge.adapters.failure_events import DEFAULT_PREFIX as DEFAULT_EVENTS_PREFIX
from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.telemetry import DEFAULT_PREFIX as DEFAULT_TELEMETRY_PREFIX
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.domain.importing import (
    DEFAULT_FAILURE_TYPE,
    DEFAULT_START,
    ColumnMapping,
    ImportedData,
    cmapss_mapping,
    events_from_table,
    normalize_events,
    read_cmapss,
    to_contract,
)
from modelforge.errors import DataImportError

__all__ = ["import_dataset", "main"]


# Machines per batch: one telemetry write, one manifest and events round per batch, and a progress line.
IMPORT_BATCH_MACHINES = 250


def import_dataset(imported: ImportedData, telemetry: TelemetryStore, events: FailureEventStore, *,
                   progress: Callable[[int, int], None] | None = None,
                   batch_machines: int = IMPORT_BATCH_MACHINES) -> dict[str, Any]:
    """Writes every machine's telemetry, then its failure events (an empty set too, so that re-importing a
    machine clears events of an earlier import), ``batch_machines`` machines per batch: each batch is one
    pooled parquet write and its manifests and events objects written concurrently (the stores'
    ``write_many``), then ``progress(done, total)`` is called (the command prints it to stderr). Returns
    ``imported.summary()``: machines, rows, events, first/last timestamps, columns.

    Events for a machine absent from the telemetry are refused before anything is written: they almost
    always mean the two files name machines differently (a missing ``machine_prefix``)."""
    names = set(imported.telemetry)
    orphans = sorted(set(imported.events["machine_name"]) - names)
    if orphans:
        raise DataImportError(f"failure events name machine(s) with no telemetry in this import: "
                              f"{', '.join(orphans[:10])}; imported machines look like "
                              f"{', '.join(sorted(names)[:3]) or 'nothing'}")
    by_machine = dict(tuple(imported.events.groupby("machine_name", sort=True)))
    machines = list(imported.telemetry)
    for first in range(0, len(machines), max(1, batch_machines)):
        batch = machines[first:first + max(1, batch_machines)]
        telemetry.write_many({name: imported.telemetry[name] for name in batch})
        events.write_many({name: by_machine.get(name, imported.events.iloc[0:0]) for name in batch})
        if progress is not None:
            progress(first + len(batch), len(machines))
    return imported.summary()


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelforge-import", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    common = _common_options()
    _add_cmapss_command(commands, common)
    _add_table_command(commands, common)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """Where to write: the same options for every source, so a parent parser both commands inherit."""
    env = os.environ.get
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where to write")
    where.add_argument("--bucket", default=env("DATA_BUCKET_NAME"),
                       help="the data bucket (default: $DATA_BUCKET_NAME)")
    where.add_argument("--prefix", default=env("PROCESSED_DATA_PREFIX") or DEFAULT_TELEMETRY_PREFIX,
                       help=f"processed-telemetry prefix (default: $PROCESSED_DATA_PREFIX or "
                            f"'{DEFAULT_TELEMETRY_PREFIX}')")
    where.add_argument("--events-prefix", default=DEFAULT_EVENTS_PREFIX,
                       help=f"failure-events prefix (default: '{DEFAULT_EVENTS_PREFIX}')")
    where.add_argument("--endpoint-url", help="an S3 endpoint other than AWS: the local cloud or LocalStack")
    where.add_argument("--region", help="AWS region (default: the usual AWS configuration)")
    where.add_argument("--dry-run", action="store_true", help="convert and validate, print the summary, write "
                                                              "nothing")
    return common


def _add_cmapss_command(commands: Any, common: argparse.ArgumentParser) -> None:
    cmapss = commands.add_parser("cmapss", parents=[common], help="a NASA C-MAPSS train or test file",
                                 description="One machine per engine (FD001-001...), cycle c at start + "
                                             "(c - 1) * cycle-minutes, the last cycle a failure event.")
    cmapss.add_argument("train_file", type=Path, metavar="TRAIN_FILE")
    cmapss.add_argument("--subset", default="FD001", help="machine-name prefix, e.g. FD001 (default)")
    cmapss.add_argument("--cycle-minutes", type=float, default=10.0, help="minutes per cycle (default 10)")
    cmapss.add_argument("--start", type=_datetime, default=DEFAULT_START,
                        help="time of cycle 1, ISO 8601; naive means UTC (default 2020-01-01)")
    cmapss.add_argument("--no-failure-events", dest="failure_events", action="store_false",
                        help="no event at the last cycle (test files stop before the failure)")


def _add_table_command(commands: Any, common: argparse.ArgumentParser) -> None:
    """A user's own export: the column mapping as options (see :class:`ColumnMapping`)."""
    table = commands.add_parser("table", parents=[common], help="your own CSV or parquet export",
                                description="Column mapping as options: machine, time, renames, drops, events.")
    table.add_argument("input", type=Path, metavar="INPUT", help=".csv, .csv.gz or .parquet")
    machine = table.add_mutually_exclusive_group(required=True)
    machine.add_argument("--machine-column", help="column holding each row's machine id")
    machine.add_argument("--machine-name", help="one machine for the whole file")
    table.add_argument("--machine-prefix", default="", help="prepended to machine ids (and to --events ids)")
    table.add_argument("--machine-digits", type=int, default=0, help="zero-pad whole-number ids to N digits")
    time = table.add_mutually_exclusive_group(required=True)
    time.add_argument("--timestamp-column", help="column of datetimes or ISO 8601 text (naive means UTC)")
    time.add_argument("--cycle-column", help="column of cycle numbers (needs --cycle-minutes and --start)")
    table.add_argument("--cycle-minutes", type=float, help="minutes per cycle")
    table.add_argument("--start", type=_datetime, help="time of cycle 1, ISO 8601; naive means UTC")
    table.add_argument("--no-keep-cycle", dest="keep_cycle", action="store_false",
                       help="do not keep the cycle number as a 'cycle' column")
    table.add_argument("--rename", nargs="+", action="extend", default=[], metavar="SOURCE=NAME",
                       help="rename source columns to contract names")
    table.add_argument("--drop", nargs="+", action="extend", default=[], metavar="COLUMN",
                       help="source columns not to import")
    table.add_argument("--last-row-is-failure", action="store_true",
                       help="record a failure at each machine's last row (run-to-failure data)")
    table.add_argument("--failure-type", default=DEFAULT_FAILURE_TYPE,
                       help=f"failure_type of those events (default '{DEFAULT_FAILURE_TYPE}')")
    table.add_argument("--component", help="component of those events (default: none)")
    records = table.add_argument_group("recorded failures from a second file")
    records.add_argument("--events", type=Path, metavar="EVENTS_FILE", help=".csv, .csv.gz or .parquet")
    records.add_argument("--events-machine-column")
    records.add_argument("--events-timestamp-column")
    records.add_argument("--events-component-column")
    records.add_argument("--events-failure-type-column")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not args.bucket:
            raise DataImportError("no data bucket: pass --bucket or set DATA_BUCKET_NAME")
        if _overlaps(args.prefix, args.events_prefix):
            raise DataImportError(f"--events-prefix '{args.events_prefix}' must be outside --prefix "
                                  f"'{args.prefix}' (and the reverse): telemetry writes replace their prefix")
        imported = _convert(args)
    except (DataImportError, OSError) as error:
        print(f"modelforge-import: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps({**imported.summary(), "written": False}))
        return 0

    _configure_aws(args.endpoint_url, args.region)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _check_bucket(args.bucket)
        import_dataset(imported, TelemetryStore(args.bucket, args.prefix),
                       FailureEventStore(args.bucket, args.events_prefix), progress=_print_progress)
    except DataImportError as error:
        print(f"modelforge-import: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"modelforge-import: writing to s3://{args.bucket} failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps({**imported.summary(), "bucket": args.bucket, "prefix": args.prefix.strip("/"),
                      "events_prefix": args.events_prefix.strip("/")}))
    return 0


def _print_progress(done: int, total: int) -> None:
    """On stderr: stdout's one line is the summary, for scripts."""
    if total > IMPORT_BATCH_MACHINES:
        print(f"modelforge-import: {done}/{total} machines written", file=sys.stderr, flush=True)


def _convert(args: argparse.Namespace) -> ImportedData:
    if args.command == "cmapss":
        mapping = cmapss_mapping(args.subset, cycle_minutes=args.cycle_minutes, start=args.start,
                                 last_cycle_is_failure=args.failure_events)
        return to_contract(read_cmapss(_existing(args.train_file)), mapping)

    mapping = ColumnMapping(
        machine_column=args.machine_column, machine_name=args.machine_name, machine_prefix=args.machine_prefix,
        machine_digits=args.machine_digits, timestamp_column=args.timestamp_column,
        cycle_column=args.cycle_column, cycle_minutes=args.cycle_minutes, start=args.start,
        rename=_pairs(args.rename), drop=tuple(args.drop), keep_cycle=args.keep_cycle,
        last_cycle_is_failure=args.last_row_is_failure, failure_type=args.failure_type, component=args.component,
    )
    imported = to_contract(_read_table(args.input), mapping)
    if args.events is None:
        if any((args.events_machine_column, args.events_timestamp_column, args.events_component_column,
                args.events_failure_type_column)):
            raise DataImportError("--events-* column options need --events EVENTS_FILE")
        return imported
    if not args.events_machine_column or not args.events_timestamp_column:
        raise DataImportError("--events needs --events-machine-column and --events-timestamp-column")
    recorded = events_from_table(_read_table(args.events), args.events_machine_column,
                                 args.events_timestamp_column, args.events_component_column,
                                 args.events_failure_type_column, machine_prefix=args.machine_prefix,
                                 machine_digits=args.machine_digits)
    imported.events = normalize_events(pd.concat([imported.events, recorded], ignore_index=True))
    return imported


def _configure_aws(endpoint_url: str | None, region: str | None) -> None:
    """Before any client exists: boto3 (botocore >= 1.31) and awswrangler both honour ``AWS_ENDPOINT_URL``;
    the cached clients of ``modelforge.adapters.aws`` are dropped in case this process made one already."""
    from modelforge.adapters import aws

    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
        os.environ["AWS_REGION"] = region
    if endpoint_url or region:
        aws.client.cache_clear()
        aws.resource.cache_clear()


def _check_bucket(bucket: str) -> None:
    """A wrong bucket name or endpoint is the commonest mistake: say so before writing anything, rather than
    with the first machine's awswrangler error."""
    from botocore.exceptions import ClientError

    from modelforge.adapters.aws import client

    try:
        client("s3").head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
            where = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
            raise DataImportError(f"bucket '{bucket}' does not exist at {where}; check --bucket and "
                                  "--endpoint-url") from error
        raise


def _read_table(path: Path) -> pd.DataFrame:
    name = _existing(path).name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    raise DataImportError(f"{path}: unknown file type; use .csv, .csv.gz or .parquet")


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise DataImportError(f"{path}: no such file")
    return path


def _pairs(items: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source or not target:
            raise DataImportError(f"--rename {item!r}: expected SOURCE=NAME")
        pairs[source] = target
    return pairs


def _datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or datetime") from error
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _overlaps(first: str, second: str) -> bool:
    a, b = first.strip("/") + "/", second.strip("/") + "/"
    return a.startswith(b) or b.startswith(a)


if __name__ == "__main__":
    sys.exit(main())
