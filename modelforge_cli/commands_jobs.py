"""Training: train (and watch), status, jobs, machines, validate, import."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from modelforge_cli.client import EXIT_BAD_INPUT, EXIT_FAILED, ApiClient, CliError
from modelforge_cli.main import app, client_of
from modelforge_cli.output import console, fields, metrics_table, print_json, table

TERMINAL = {"completed", "failed"}
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer instead of tables (for scripts).")]
Indicator = Annotated[str, typer.Option("--indicator", "-i", help="status (failure classifier) or health "
                                        "(minutes-to-failure regressor).")]
Start = Annotated[str | None, typer.Option("--start", help="First day of data, YYYY-MM-DD (inclusive).")]
End = Annotated[str | None, typer.Option("--end", help="Last day of data, YYYY-MM-DD (inclusive).")]
Fleet = Annotated[str | None, typer.Option("--fleet", help="A fleet model: its machines, comma-separated "
                                           "(MACHINE is then the fleet model's own name).")]
FleetFile = Annotated[Path | None, typer.Option("--fleet-file", help="A fleet's machines, one a line.",
                                                exists=True, dir_okay=False)]
Options = Annotated[list[str] | None, typer.Option("--option", "-o", help="A training option, k=v (repeat): "
                                                   "e.g. label_window_minutes=30, feature_windows_minutes=[15,60]; "
                                                   "see POST /train's options in /swagger.")]
FailureEvents = Annotated[str | None, typer.Option("--failure-events", help="rpm_drop (default) or records.")]


def training_body(machine: str, indicator: str, *, start: str | None, end: str | None, fleet: str | None,
                  fleet_file: Path | None, options: list[str] | None, failure_events: str | None) -> dict[str, Any]:
    """POST /train's (and /validate's) body from the options; only what was given is sent, so the API's
    defaults apply and its own validation speaks for the rest."""
    body: dict[str, Any] = {"indicator": indicator, "machine_name": machine}
    for key, value in (("start_date", start), ("end_date", end), ("failure_events", failure_events)):
        if value is not None:
            body[key] = value
    machines = _fleet(fleet, fleet_file)
    if machines:
        body["machine_names"] = machines
    if options:
        body["options"] = dict(_option(text) for text in options)
    return body


def _fleet(fleet: str | None, fleet_file: Path | None) -> list[str]:
    names = [n.strip() for n in (fleet or "").split(",") if n.strip()]
    if fleet_file is not None:
        names += [line.strip() for line in fleet_file.read_text().splitlines() if line.strip()]
    return names


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise CliError(f"--option {text!r}: write it as key=value", EXIT_BAD_INPUT)
    try:
        value = json.loads(raw)  # numbers, lists, true/false; anything else is text
    except ValueError:
        value = raw
    return key.strip(), value


@app.command()
def train(
    ctx: typer.Context,
    machine: Annotated[str, typer.Argument(help="The machine to train on (or the fleet model's name).")],
    indicator: Indicator = "status",
    start: Start = None,
    end: End = None,
    fleet: Fleet = None,
    fleet_file: FleetFile = None,
    option: Options = None,
    failure_events: FailureEvents = None,
    compute: Annotated[str | None, typer.Option("--compute", help="Where training runs: auto, lambda, batch or gpu "
                                                "(sent as 'compute'; the API must know the field).")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Retries with the same key "
                                                        "return the same job.")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Watch the job live (its state, the state machine's "
                                       "current step, elapsed time) until it ends; then its metrics and the "
                                       "gate's decision. Ctrl-C stops watching, not the job.")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.2, help="Seconds between status reads.")] = 1.0,
    as_json: Json = False,
) -> None:
    """Start training a model (POST /train); with --wait, watch it to the end."""
    body = training_body(machine, indicator, start=start, end=end, fleet=fleet, fleet_file=fleet_file,
                         options=option, failure_events=failure_events)
    if compute is not None:
        body["compute"] = compute  # only when given: TrainRequest forbids unknown fields until it knows this one
    client = client_of(ctx)
    submitted = client.post("/train", body, headers={"Idempotency-Key": idempotency_key} if idempotency_key else None)
    if not wait:
        if as_json:
            print_json(submitted)
        else:
            console.print(f"job [bold]{submitted['process_id']}[/bold] {submitted['status']}: "
                          f"modelforge status {submitted['process_id']} --watch")
        return
    if not as_json:
        console.print(f"job [bold]{submitted['process_id']}[/bold] submitted: {indicator} model of {machine}")
    _finish(watch(client, submitted["process_id"], poll, quiet=as_json), as_json)


@app.command()
def status(
    ctx: typer.Context,
    process_id: Annotated[str, typer.Argument(help="The job's id (POST /train's process_id).")],
    watch_it: Annotated[bool, typer.Option("--watch", "-w", help="Follow it live until it ends (Ctrl-C stops "
                                           "watching, not the job).")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.2, help="Seconds between status reads.")] = 1.0,
    as_json: Json = False,
) -> None:
    """A training job's state, step, metrics and gate decision (GET /status/ID)."""
    client = client_of(ctx)
    job = watch(client, process_id, poll, quiet=as_json) if watch_it else client.get(f"/status/{process_id}")
    _finish(job, as_json)


def _finish(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(job)
    else:
        show_job(job)
    if job["status"] == "failed":
        raise typer.Exit(EXIT_FAILED)


def watch(client: ApiClient, process_id: str, poll: float, *, quiet: bool = False) -> dict[str, Any]:
    """Reads the job until it completes or fails, showing its state, the state machine's step (from the
    execution's history, GET /status's ``steps``) and the elapsed time. Each step is printed once as it is
    entered, so the lines stay in a terminal's scrollback or a log."""
    try:
        return _watch(client, process_id, poll, quiet)
    except KeyboardInterrupt:
        console.print(f"stopped watching; job {process_id} goes on: modelforge status {process_id} --watch")
        raise typer.Exit(130) from None


def _watch(client: ApiClient, process_id: str, poll: float, quiet: bool) -> dict[str, Any]:
    started = time.monotonic()
    seen = 0
    with Live(Text(""), console=console, transient=True, refresh_per_second=4, redirect_stdout=False) as live:
        while True:
            job = client.get(f"/status/{process_id}")
            steps = job.get("steps") or []
            elapsed = time.monotonic() - started
            for step in steps[seen:]:
                if not quiet:
                    live.console.print(f"  [cyan]→[/cyan] {step}  [dim]({_clock(elapsed)})[/dim]", highlight=False)
            seen = max(seen, len(steps))
            if job["status"] in TERMINAL:
                return dict(job)
            if not quiet:
                live.update(Text.assemble(("● ", "yellow"), (f"{job['status']}", "bold"), "  step: ",
                                          (str(job.get("current_step") or "starting"), "cyan"),
                                          f"  elapsed {_clock(elapsed)}"))
            time.sleep(poll)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"


def show_job(job: dict[str, Any]) -> None:
    colour = {"completed": "green", "failed": "red"}.get(job["status"], "yellow")
    console.print(f"[bold]{job['process_id']}[/bold]  [{colour}]{job['status']}[/{colour}]  "
                  f"{job['indicator']} model of {job['machine_name']}")
    if job.get("steps"):
        console.print("steps: " + " → ".join(job["steps"]), highlight=False)
    fields("job", job, ["current_step", "start_date", "end_date", "machine_names", "created_at", "finished_at",
                        "model_id", "bucket_address", "error_message", "execution_arn"])
    metrics_table(job.get("metrics"))
    if job.get("gate_decision"):
        colour = "green" if job["gate_decision"] == "promoted" else "yellow"
        console.print(f"gate: [{colour}]{job['gate_decision']}[/{colour}] — {job.get('gate_reason') or ''}")


@app.command()
def jobs(
    ctx: typer.Context,
    machine: Annotated[str | None, typer.Option("--machine", "-m", help="Only this machine's jobs.")] = None,
    job_status: Annotated[str | None, typer.Option("--status", "-s", help="pending, running, completed or "
                                                   "failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="How many, newest first.")] = 20,
    as_json: Json = False,
) -> None:
    """Training jobs, newest first (GET /jobs)."""
    answer = client_of(ctx).get("/jobs", {"machine_name": machine, "status": job_status, "limit": limit})
    if as_json:
        print_json(answer)
        return
    table("jobs", ["process_id", "machine", "indicator", "status", "created", "error"],
          [(j["process_id"], j["machine_name"], j["indicator"], j["status"], j["created_at"],
            (j.get("error_message") or "")[:80]) for j in answer["jobs"]])


@app.command()
def machines(ctx: typer.Context, as_json: Json = False) -> None:
    """Machines with processed data and their data range (GET /machines)."""
    answer = client_of(ctx).get("/machines")
    if as_json:
        print_json(answer)
        return
    table("machines", ["machine", "first", "last", "rows", "columns"],
          [(m["machine_name"], m["first_timestamp"], m["last_timestamp"], m["rows"], len(m["columns"]))
           for m in answer["machines"]])


@app.command()
def validate(
    ctx: typer.Context,
    machine: Annotated[str, typer.Argument(help="The machine whose data to check (or a fleet model's name).")],
    indicator: Indicator = "status",
    start: Start = None,
    end: End = None,
    fleet: Fleet = None,
    fleet_file: FleetFile = None,
    option: Options = None,
    failure_events: FailureEvents = None,
    as_json: Json = False,
) -> None:
    """Training's data checks without training (POST /validate): rows, invalid rows by reason, failure events
    found, and whether a job would succeed. Exit 1 when it would not."""
    body = training_body(machine, indicator, start=start, end=end, fleet=fleet, fleet_file=fleet_file,
                         options=option, failure_events=failure_events)
    answer = client_of(ctx).post("/validate", body)
    if as_json:
        print_json(answer)
    else:
        show_validation(answer)
    if not answer["would_succeed"]:
        raise typer.Exit(EXIT_FAILED)


def show_validation(answer: dict[str, Any]) -> None:
    table(f"data of {answer['machine_name']} ({answer['indicator']}, failures from {answer['failure_events_source']})",
          ["machine", "rows read", "rows valid", "invalid rows by reason", "impossible by column", "failure events",
           "problem"],
          [(m["machine_name"], m["rows_read"], m["rows_valid"],
            ", ".join(f"{k}: {v}" for k, v in m["invalid_rows"].items() if v) or "none",
            ", ".join(f"{k}: {v}" for k, v in m["impossible_by_column"].items()) or "-",
            m["failure_events"], m.get("error")) for m in answer["machines"]])
    if answer["would_succeed"]:
        console.print(f"[green]a training job would pass the data checks[/green] ({answer['rows_usable']} usable rows)")
    else:
        console.print(f"[red]a training job would fail:[/red] {answer['error_type']}: {answer['error_message']}")


@app.command("import", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             add_help_option=False)
def import_data(ctx: typer.Context) -> None:
    """Convert a dataset (C-MAPSS or a table) into the data contract and write it to the data bucket: the
    same command as `modelforge-import` (`modelforge import --help` lists its options)."""
    from modelforge.importer import main as import_main

    code = import_main(list(ctx.args))
    if code:
        raise typer.Exit(code)

