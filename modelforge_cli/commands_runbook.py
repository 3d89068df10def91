"""The runbook's recovery options (docs/cli.md, "Runbook options as commands"): retrain, triggers, triggers
resolve. Against the retraining routes: POST /retrain, GET /retrains/{run_id}, GET /triggers,
POST /triggers/resolve."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from modelforge_cli.client import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from modelforge_cli.commands_jobs import Json
from modelforge_cli.commands_models import model_name
from modelforge_cli.main import app, client_of
from modelforge_cli.output import console, fields, print_json, table

triggers_app = typer.Typer(help="Retraining triggers: list them (this command), or mark them resolved "
                           "(`triggers resolve`).", no_args_is_help=False)
app.add_typer(triggers_app, name="triggers")


@app.command()
def retrain(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MACHINE, MACHINE/INDICATOR, MACHINE#INDICATOR, or `all` (every "
                                         "champion).")],
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="status or health (default: status, "
                                                  "unless MODEL names it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Retrain even if no trigger (drift, a failure) asks for "
                                        "it.")] = False,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the run until it ends; exit 1 if it failed.")]
        = False,
    poll: Annotated[float, typer.Option("--poll", min=0.2, help="Seconds between reads.")] = 2.0,
    as_json: Json = False,
) -> None:
    """Start a retraining run (POST /retrain): the runbook's option 1, "retry the retraining"."""
    body: dict[str, Any]
    if model == "all":
        if indicator:
            raise CliError("`retrain all` retrains every champion: drop --indicator", EXIT_BAD_INPUT)
        body = {"all": True}
    else:
        machine, named = model_name(model, indicator)
        body = {"machine_name": machine, "indicator": named}
    if force:
        body["force"] = True
    client = client_of(ctx)
    started = client.post("/retrain", body)
    if not wait:
        if as_json:
            print_json(started)
        else:
            console.print(f"retraining run [bold]{started['run_id']}[/bold] started "
                          f"(execution {started.get('execution_arn')})")
        return
    try:
        run = _follow(client, started["run_id"], poll, quiet=as_json)
    except KeyboardInterrupt:
        console.print(f"stopped watching; run {started['run_id']} goes on: modelforge triggers --run "
                      f"{started['run_id']}")
        raise typer.Exit(130) from None
    if as_json:
        print_json(run)
    else:
        show_run(run)
    if run["status"] == "failed":
        raise typer.Exit(EXIT_FAILED)


def _follow(client: Any, run_id: str, poll: float, *, quiet: bool) -> dict[str, Any]:
    began = time.monotonic()
    with Live(Text(""), console=console, transient=True, refresh_per_second=4) as live:
        while True:
            run: dict[str, Any] = client.get(f"/retrains/{run_id}")
            if run["status"] != "running":
                return run
            if not quiet:
                counts: dict[str, int] = {}
                for trigger in run.get("triggers") or []:
                    counts[trigger["status"]] = counts.get(trigger["status"], 0) + 1
                live.update(Text(f"● run {run_id} running, {int(time.monotonic() - began)} s; triggers: "
                                 + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none yet")))
            time.sleep(poll)


def show_run(run: dict[str, Any]) -> None:
    colour = {"succeeded": "green", "failed": "red"}.get(run["status"], "yellow")
    console.print(f"retraining run [bold]{run['run_id']}[/bold]: [{colour}]{run['status']}[/{colour}]")
    if run.get("summary"):
        fields("summary", run["summary"])
    show_triggers(run.get("triggers") or [])


def show_triggers(triggers: list[dict[str, Any]], title: str = "triggers") -> None:
    table(title, ["trigger_id", "model", "indicator", "status", "reason", "process_id", "error", "updated"],
          [(t["trigger_id"], t.get("model_name") or t.get("machine_name"), t.get("indicator"), t["status"],
            t.get("reason"), t.get("process_id"), (t.get("error_message") or t.get("resolution_reason") or "")[:80],
            t.get("updated_at")) for t in triggers])


@triggers_app.callback(invoke_without_command=True)
def triggers(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", "-s", help="triggered, running, completed, failed or "
                                               "resolved_manually.")] = None,
    machine: Annotated[str | None, typer.Option("--machine", "-m", help="Only this machine's triggers.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this retraining run's triggers.")] = None,
    as_json: Json = False,
) -> None:
    """Retraining triggers (GET /triggers): what asked for a retrain, and how it went."""
    if ctx.invoked_subcommand is not None:
        return
    answer = client_of(ctx).get("/triggers", {"status": status, "machine_name": machine, "run_id": run_id})
    if as_json:
        print_json(answer)
        return
    show_triggers(answer["triggers"])


@triggers_app.command("resolve")
def resolve(
    ctx: typer.Context,
    trigger_ids: Annotated[list[str] | None, typer.Argument(help="The triggers to mark resolved.")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed trigger (of --machine only, if "
                                             "given).")] = False,
    machine: Annotated[str | None, typer.Option("--machine", "-m", help="With --all-failed: this machine's "
                                                "only.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (recorded with your identity).")] = None,
    as_json: Json = False,
) -> None:
    """Mark triggers resolved by hand (POST /triggers/resolve): the runbook's option 5, when the problem was
    fixed outside the pipeline."""
    if not reason:
        raise CliError("--reason is required: say why the triggers are resolved", EXIT_BAD_INPUT)
    if bool(trigger_ids) == all_failed:
        raise CliError("name the triggers (IDs) or pass --all-failed, not both or neither", EXIT_BAD_INPUT)
    if machine and not all_failed:
        raise CliError("--machine goes with --all-failed", EXIT_BAD_INPUT)
    body: dict[str, Any] = ({"all_failed": True, **({"machine_name": machine} if machine else {})} if all_failed
                            else {"trigger_ids": list(trigger_ids or [])})
    answer = client_of(ctx).post("/triggers/resolve", {**body, "reason": reason})
    if as_json:
        print_json(answer)
        return
    show_triggers(answer["resolved"], title=f"{len(answer['resolved'])} trigger(s) resolved")
