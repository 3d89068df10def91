"""`modelforge`: the service from a terminal. Train and watch models, read jobs, models and reports, promote,
predict a file, validate data, and the runbook's recovery options (retrain, triggers, drift).

Every command talks to the HTTP API only (the local cloud of `make run` by default), so the same commands work
against a deployed stack: `--stack NAME` (SigV4 with your AWS credentials, ApiAuth=IAM) or `--token` (ApiAuth=JWT).
Exit status: 0 done, 1 a failed job or an unreachable/failing service, 2 bad input (the API's message says
which field and why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.markup import escape

from modelforge_cli.client import (
    LOCAL_API_URL,
    ApiClient,
    Auth,
    CliError,
    env_or,
    stack_api_url,
)
from modelforge_cli.output import errors

app = typer.Typer(name="modelforge", help=__doc__, no_args_is_help=True, add_completion=False,
                  rich_markup_mode="markdown", pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@dataclass
class Settings:
    api_url: str | None
    stack: str | None
    token: str | None
    auth: str
    region: str | None

    def client(self) -> ApiClient:
        """The API's client, from the options: --api-url / MODELFORGE_API_URL, else --stack's ApiUrl, else the
        local cloud. Authorization: --auth, else JWT with a token, IAM with a stack, none locally."""
        url = env_or(self.api_url, "MODELFORGE_API_URL")
        if url is None and self.stack:
            url = stack_api_url(self.stack, self.region)
        mode = self.auth
        if mode == "auto":
            mode = "jwt" if self.token else ("iam" if self.stack else "none")
        return ApiClient(url or LOCAL_API_URL, Auth(mode=mode, token=self.token, region=self.region))


@app.callback()
def main_options(
    ctx: typer.Context,
    api_url: Annotated[str | None, typer.Option(
        "--api-url", envvar="MODELFORGE_API_URL", show_envvar=True,
        help=f"The API's base URL (default: the local cloud, {LOCAL_API_URL}).")] = None,
    stack: Annotated[str | None, typer.Option(
        "--stack", envvar="MODELFORGE_STACK", help="A deployed stack's name: its ApiUrl output is the API; "
        "requests are signed with SigV4 (ApiAuth=IAM).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="MODELFORGE_TOKEN", help="A JWT access token (ApiAuth=JWT), sent as a bearer token.")] = None,
    auth: Annotated[str, typer.Option(
        "--auth", help="auto (JWT with a token, SigV4 with --stack, none otherwise), iam, jwt or none.",
        case_sensitive=False)] = "auto",
    region: Annotated[str | None, typer.Option(
        "--region", envvar="AWS_REGION", help="AWS region for --stack and SigV4 (default: your AWS configuration).")]
        = None,
) -> None:
    """Where the API is and how to authorize; every command takes these before its name."""
    if auth not in {"auto", "iam", "jwt", "none"}:
        raise typer.BadParameter("must be auto, iam, jwt or none", param_hint="--auth")
    ctx.obj = Settings(api_url=api_url, stack=stack, token=token, auth=auth.lower(), region=region)


def client_of(ctx: typer.Context) -> ApiClient:
    settings: Settings = ctx.find_root().obj
    return settings.client()


def _register() -> None:
    # The commands live by theme; importing them adds them to `app`.
    from modelforge_cli import commands_jobs, commands_models, commands_runbook  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """The console script. Typer's standalone mode handles usage errors (exit 2), --help and Ctrl-C; a CliError
    (the API's answer, an unreachable service, a bad file) ends as its message on stderr and its exit status."""
    _register()
    try:
        app(args=argv, prog_name="modelforge")
    except CliError as error:
        errors.print(f"[red]error:[/red] {escape(error.message)}", highlight=False, soft_wrap=True)
        raise SystemExit(error.exit_code) from None
