"""The registry and inference: models, promote, report, predict, drift."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated, Any

import requests
import typer

from modelforge_cli.client import EXIT_BAD_INPUT, EXIT_FAILED, TIMEOUT_SECONDS, ApiClient, CliError
from modelforge_cli.commands_jobs import Json
from modelforge_cli.main import app, client_of
from modelforge_cli.output import console, errors, fields, print_json, table

Machine = Annotated[str, typer.Argument(help="The model's machine (or fleet) name.")]
IndicatorArg = Annotated[str, typer.Argument(help="status or health.")]


def model_name(model: str, indicator: str | None) -> tuple[str, str]:
    """MACHINE, MACHINE/INDICATOR or MACHINE#INDICATOR (the registry's key) -> (machine, indicator)."""
    for separator in ("/", "#"):
        if separator in model:
            machine, _, named = model.partition(separator)
            return machine, named
    return model, indicator or "status"


def champion(client: ApiClient, machine: str, indicator: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"/models/{machine}/{indicator}")
    return answer


def find_version(client: ApiClient, machine: str, indicator: str, version: str | None) -> dict[str, Any]:
    """A version's summary (the champion's when ``version`` is None), with its report_url."""
    if version is None:
        return dict(champion(client, machine, indicator)["champion"])
    listed = client.get("/models", {"machine_name": machine, "indicator": indicator, "limit": 100})["versions"]
    for summary in listed:
        if summary["version"] == version:
            return dict(summary)
    raise CliError(f"{machine}/{indicator} has no version {version} among its latest 100 (modelforge models "
                   f"{machine} {indicator})", EXIT_BAD_INPUT)


@app.command()
def models(
    ctx: typer.Context,
    machine: Machine,
    indicator: Annotated[str | None, typer.Argument(help="status or health (default: both).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="How many, newest first.")] = 50,
    as_json: Json = False,
) -> None:
    """A machine's model versions, newest first, with their status and metrics (GET /models); with an
    indicator, also the champion and its promotion history."""
    client = client_of(ctx)
    listed = client.get("/models", {"machine_name": machine, "indicator": indicator, "limit": limit})
    if as_json:
        print_json(listed)
        return
    key = {"status": ("recall", "precision", "f2", "pr_auc"), "health": ("rmse", "mae", "r2")}
    table(f"models of {machine}", ["version", "indicator", "status", "trained", "metrics", "decided by"],
          [(v["version"], v["indicator"], v["status"], v.get("trained_at"),
            ", ".join(f"{m}={v['metrics'][m]:.3g}" for m in key.get(v["indicator"], ())
                      if isinstance((v.get("metrics") or {}).get(m), int | float)), v.get("decided_by"))
           for v in listed["versions"]])
    if indicator is not None:
        try:
            show_champion(champion(client, machine, indicator))
        except CliError as error:
            console.print(f"no champion: {error.message}", highlight=False)


@app.command()
def promote(
    ctx: typer.Context,
    machine: Machine,
    indicator: IndicatorArg,
    version: Annotated[str, typer.Argument(help="The version to make champion (an older one rolls back).")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: recorded with your identity.")],
    override: Annotated[bool, typer.Option("--override", help="Promote a version the gate rejected or never "
                                           "decided on (the reason must then say why).")] = False,
    as_json: Json = False,
) -> None:
    """Make a version the champion, or roll back to a former one (POST /models/M/I/promote)."""
    answer = client_of(ctx).post(f"/models/{machine}/{indicator}/promote",
                                 {"version": version, "reason": reason, **({"override": True} if override else {})})
    if as_json:
        print_json(answer)
        return
    console.print(f"{machine}/{indicator}: champion [bold]{answer['champion_version']}[/bold] "
                  f"(was {answer.get('previous_version') or 'none'})")


@app.command()
def report(
    ctx: typer.Context,
    machine: Machine,
    indicator: IndicatorArg,
    version: Annotated[str | None, typer.Option("--version", "-v", help="A version (default: the champion).")]
        = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Save the HTML report here.")] = None,
    as_json: Json = False,
) -> None:
    """A model's HTML report: fetched straight from S3 through the short-lived presigned URL the models API
    gives (report_url); without --open or --output, the URL is printed."""
    summary = find_version(client_of(ctx), machine, indicator, version)
    url = summary.get("report_url")
    if not url:
        raise CliError(f"{machine}/{indicator} version {summary['version']} has no report", EXIT_FAILED)
    if output is not None:
        output.write_bytes(_download(url))
        if not as_json:
            console.print(f"report of {machine}/{indicator} {summary['version']} saved to {output}")
    if open_it:
        webbrowser.open(url)
    if as_json:
        print_json({"machine_name": machine, "indicator": indicator, "version": summary["version"],
                    "report_url": url, "output": str(output) if output else None})
    elif output is None:
        console.print(url, soft_wrap=True, highlight=False)


def _download(url: str) -> bytes:
    try:
        response = requests.get(url, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise CliError(f"cannot fetch the report: {error.__class__.__name__}") from error
    if response.status_code != 200:
        raise CliError(f"the report's URL answered HTTP {response.status_code} (it expires after a few minutes: "
                       "run the command again)")
    return response.content


@app.command()
def drift(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="MACHINE, MACHINE/INDICATOR or MACHINE#INDICATOR.")],
    indicator: Annotated[str | None, typer.Option("--indicator", "-i", help="status or health (default: status, "
                                                  "unless MODEL names it).")] = None,
    as_json: Json = False,
) -> None:
    """The champion's last drift check, per feature (last_drift_check of GET /models/M/I)."""
    machine, named = model_name(model, indicator)
    check = champion(client_of(ctx), machine, named).get("last_drift_check")
    if as_json:
        print_json(check)
        return
    if not check:
        console.print(f"{machine}/{named}: no drift check recorded yet")
        return
    show_drift(check)


FEATURE_COLUMNS = ("feature", "drifted", "test", "score", "psi")


def show_drift(check: dict[str, Any]) -> None:
    """Whatever the check holds: its scalar fields, then one row per feature of any per-feature mapping."""
    scalars = {k: v for k, v in check.items() if not isinstance(v, dict | list)}
    fields("last drift check", scalars)
    for key, value in check.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns = sorted({c for v in value.values() for c in v})
            table(key, ["feature", *columns], [(f, *[v.get(c) for c in columns]) for f, v in value.items()])
        elif isinstance(value, dict) and value:
            table(key, ["feature", "value"], sorted(value.items()))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(c for v in value for c in v))
            if "feature" in columns:  # the verdict's columns, so a feature's name fits whole (--json has all)
                columns = [c for c in FEATURE_COLUMNS if c in columns] or columns
            table(key, columns, [[v.get(c) for c in columns] for v in value])
        elif isinstance(value, list) and value:
            console.print(f"{key}: {', '.join(map(str, value))}")


@app.command()
def predict(
    ctx: typer.Context,
    machine: Machine,
    indicator: IndicatorArg,
    input_file: Annotated[Path, typer.Option("--input", help="Telemetry rows in time order: .csv or .parquet, any "
                                             "length.", exists=True, dir_okay=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the rows with their "
                                                "predictions (.csv or .parquet; default: CSV on stdout).")] = None,
) -> None:
    """Score a file with the champion (POST /predict), cut into calls of at most 1,000 records; each call also
    carries the rows of the model's rolling windows before its own (their predictions are dropped), so every
    row is scored as if the file had been sent at once."""
    from modelforge_cli.predict_file import predict_file

    client = client_of(ctx)
    summary = find_version(client, machine, indicator, None)
    scored = predict_file(client, machine, indicator, input_file, summary)
    if output is None:
        typer.echo(scored.to_csv(index=False), nl=False)
    elif output.suffix == ".parquet":
        scored.to_parquet(output, index=False)
    else:
        scored.to_csv(output, index=False)
    if output is not None:
        errors.print(f"{len(scored)} rows scored by {machine}/{indicator} {summary['version']} -> {output}")


def show_champion(answer: dict[str, Any]) -> None:
    summary = answer["champion"]
    fields("champion", {**summary, "promoted_by": answer.get("promoted_by"), "reason": answer.get("reason")},
           ["version", "status", "trained_at", "promoted_by", "reason", "artifact_uri"])
    history = answer.get("history") or []
    if history:
        table("promotions", ["at", "from", "to", "by", "override", "reason"],
              [(h["at"], h.get("from_version"), h["to_version"], h["promoted_by"], h.get("override"), h["reason"])
               for h in history])
