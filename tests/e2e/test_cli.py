"""The `modelforge` command against a running stack (the e2e tier's local cloud, or a deployed stack): one model
trained and watched with `train --wait` in a real terminal (tmux), then every command whose route is on this
branch run on it as a user would, as a subprocess, checking the exit status and what it prints.

The runbook commands (retrain, triggers, triggers resolve) run against the retraining routes here too, and
against a fake API in tests/unit/test_cli.py for what a stack cannot be made to answer on demand."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.e2e.conftest import REPO_ROOT, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCREEN_WIDTH, SCREEN_HEIGHT = 150, 60


def environment(stack: Stack) -> dict[str, str]:
    return {**os.environ, **stack.environment, "MODELFORGE_API_URL": stack.api_url, "COLUMNS": str(SCREEN_WIDTH)}


def command(stack: Stack, *args: str) -> list[str]:
    auth = ["--auth", "iam"] if stack.aws_endpoint is None else []  # a deployed stack: SigV4 (ApiAuth=IAM)
    return [sys.executable, "-m", "modelforge_cli", *auth, *args]


def cli(stack: Stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(stack, *args), capture_output=True, text=True, timeout=timeout,
                          env=environment(stack), cwd=REPO_ROOT)


def cli_json(stack: Stack, *args: str) -> Any:
    done = cli(stack, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.fixture(scope="module")
def trained(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`modelforge train MACHINE --wait` in a tmux pane: the screens seen while it ran, the last one, and the
    job it trained (shared by the module: one training)."""
    assert shutil.which("tmux"), "tmux is needed to run the CLI in a real terminal"
    machine = cli_json(stack, "machines")["machines"][0]["machine_name"]
    session = f"modelforge-cli-{os.getpid()}"
    shell = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment(stack).items()
                     if k in {"PYTHONPATH", "PATH", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                              "AWS_PROFILE", "AWS_REGION", "MODELFORGE_API_URL", "HOME"})
    train = shlex.join(command(stack, "train", machine, "--wait"))
    line = f"cd {shlex.quote(str(REPO_ROOT))} && env -u COLUMNS {shell} {train}"
    tmux("new-session", "-d", "-s", session, "-x", str(SCREEN_WIDTH), "-y", str(SCREEN_HEIGHT),
         f"{line}; echo EXIT=$?; sleep 600")
    screens: list[str] = []
    try:
        deadline = time.monotonic() + 400
        while "EXIT=" not in (screens[-1] if screens else ""):
            assert time.monotonic() < deadline, screens[-1] if screens else "no screen"
            screens.append(tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session))
            time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=30)
    final = screens[-1]
    kept = tmp_path_factory.mktemp("cli")  # the screens, for a person to look at
    (kept / "train-wait-screen.txt").write_text(final)
    (kept / "train-wait-live.txt").write_text(next((s for s in screens if "step: TrainModel" in s), ""))
    process_id = re.search(r"job (\S+) submitted", final)
    assert process_id, final
    job = cli_json(stack, "status", process_id.group(1))
    yield {"machine": machine, "job": job, "screens": screens, "final": final}


def test_train_wait_in_a_terminal_shows_the_steps_live_and_ends_with_the_metrics(trained: dict[str, Any]) -> None:
    final, job = trained["final"], trained["job"]
    assert "EXIT=0" in final and job["status"] == "completed", final
    arrows = re.findall(r"→ (\w+)\s+\((\d\d:\d\d)\)", final)  # each step once, as it was entered, with its time
    steps = [name for name, _ in arrows]
    assert steps[:4] == ["MarkJobRunning", "ChooseCompute", "TrainModel", "GateChallenger"], final
    assert steps == job["steps"]
    assert [clock for _, clock in arrows] == sorted(clock for _, clock in arrows)
    # While it ran, the live line said the state and the step the execution was in.
    assert any(re.search(r"● running\s+step: TrainModel\s+elapsed \d\d:\d\d", screen) for screen in trained["screens"])
    after = final[final.index("completed"):]
    assert "metrics" in after and "recall" in after and "precision" in after
    assert re.search(r"gate: (promoted|rejected) — \S", after), after


def test_status_and_jobs_show_the_job(stack: Stack, trained: dict[str, Any]) -> None:
    job = trained["job"]
    assert job["current_step"] == job["steps"][-1] and "TrainModel" in job["steps"]
    shown = cli(stack, "status", job["process_id"])
    assert shown.returncode == 0 and "completed" in shown.stdout
    assert "MarkJobRunning → ChooseCompute → TrainModel" in shown.stdout
    watched = cli(stack, "status", job["process_id"], "--watch")  # a finished job: one read, the same answer
    assert watched.returncode == 0 and "completed" in watched.stdout
    listed = cli_json(stack, "jobs", "--machine", trained["machine"], "--status", "completed")
    assert job["process_id"] in [j["process_id"] for j in listed["jobs"]]


def test_machines_and_models_list_what_the_api_holds(stack: Stack, trained: dict[str, Any]) -> None:
    machine, job = trained["machine"], trained["job"]
    machines = cli(stack, "machines")
    assert machines.returncode == 0 and machine in machines.stdout
    versions = cli_json(stack, "models", machine, "status")["versions"]
    (ours,) = [v for v in versions if v["version"] == job["model_id"]]
    assert ours["feature_names"] and ours["report_url"].startswith("http")
    table = cli(stack, "models", machine, "status")
    assert table.returncode == 0 and job["model_id"] in table.stdout


def test_report_is_fetched_from_its_presigned_url(stack: Stack, trained: dict[str, Any], tmp_path: Path) -> None:
    machine, job = trained["machine"], trained["job"]
    saved = tmp_path / "report.html"
    done = cli(stack, "report", machine, "status", "--version", job["model_id"], "--output", str(saved))
    assert done.returncode == 0, done.stderr
    html = saved.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and machine in html
    printed = cli_json(stack, "report", machine, "status", "--version", job["model_id"])
    assert printed["version"] == job["model_id"] and "X-Amz-Signature=" in printed["report_url"]


def test_promote_makes_the_version_champion_and_bad_input_exits_2(stack: Stack, trained: dict[str, Any]) -> None:
    machine, job = trained["machine"], trained["job"]
    override = [] if job["gate_decision"] == "promoted" else ["--override"]
    done = cli(stack, "promote", machine, "status", job["model_id"], *override,
               "--reason", "the CLI's end-to-end test promotes the model it trained")
    assert done.returncode == 0, done.stderr
    assert f"champion {job['model_id']}" in " ".join(done.stdout.split())
    missing = cli(stack, "promote", machine, "status", "20200101T000000Z-00000000", "--reason", "no such version")
    assert missing.returncode == 2 and "has no version 20200101T000000Z-00000000" in missing.stderr


def test_predict_scores_a_csv_in_chunks_as_one_call_would(stack: Stack, trained: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """2,300 rows: three calls of at most 1,000 records. The last 500 rows' predictions are the ones one
    /predict call gives for them with the model's window of rows before them."""
    from localcloud.demo_data import generate_machine_telemetry

    machine = trained["machine"]
    rows = generate_machine_telemetry(machine, start="2025-03-01", days=2, seed=11).telemetry.head(2300)
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    done = cli(stack, "predict", machine, "status", "--input", str(source), "--output", str(out))
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out)
    assert len(scored) == len(rows) and {"prediction", "probability"} <= set(scored.columns)
    assert set(scored["prediction"]) <= {0.0, 1.0}
    window = 60 + 5  # the default recipe's longest window (60 min), plus slack: the context a call needs
    tail = rows.iloc[len(rows) - 500 - window:]
    records = json.loads(tail.to_json(orient="records", date_format="iso"))
    answer = stack.session.post(f"{stack.api_url}/predict", json={"machine_name": machine, "indicator": "status",
                                                                 "records": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    direct = [p["probability"] for p in answer.json()["predictions"][window:]]
    assert scored["probability"].iloc[-500:].tolist() == pytest.approx(direct, rel=1e-6, abs=1e-9)


def test_validate_reports_the_data_and_an_unknown_machine_exits_2_with_the_api_s_message(
        stack: Stack, trained: dict[str, Any]) -> None:
    answer = cli_json(stack, "validate", trained["machine"])
    assert answer["would_succeed"] and answer["machines"][0]["rows_valid"] > 0
    assert answer["machines"][0]["failure_events"] > 0
    bad = cli(stack, "validate", "NOPE-404")
    assert bad.returncode == 2
    assert "body.machine_name: no processed data for machine 'NOPE-404'" in bad.stderr


def test_bad_input_reaches_the_user_as_the_api_says_it_with_exit_2(stack: Stack, trained: dict[str, Any]) -> None:
    unknown = cli(stack, "train", "NOPE-404")
    assert unknown.returncode == 2
    assert "HTTP 422: body.machine_name: no processed data for machine 'NOPE-404'" in " ".join(unknown.stderr.split())
    late = cli(stack, "train", trained["machine"], "--start", "2099-01-01")
    assert late.returncode == 2 and "body.start_date: is after the last data" in late.stderr
    wrong = cli(stack, "train", trained["machine"], "--indicator", "speed")
    assert wrong.returncode == 2 and "body.indicator" in wrong.stderr
    missing = cli(stack, "status", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr


def test_drift_shows_the_last_check_after_the_schedule_ran(stack: Stack, trained: dict[str, Any]) -> None:
    if stack.aws_endpoint is None:
        pytest.skip("firing the retrain schedule by hand is the local cloud's")
    import time

    import requests

    machine = trained["machine"]
    fired = requests.post(f"{stack.api_url}/_local/schedules/RetrainSchedule/fire?wait=true", timeout=600)
    assert fired.status_code == 200, fired.text
    run_id = fired.json()["result"]["executionArn"].rsplit(":", 1)[-1]  # the execution's name is the run's id
    deadline = time.monotonic() + 600
    # 404 until the run's Plan state writes its record (the summary is written once every item decided).
    while (run := requests.get(f"{stack.api_url}/retrains/{run_id}", timeout=30).json()).get(
            "status", "running") == "running" and not run.get("summary"):
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    assert run["summary"]["models"] >= 1 and not run["summary"]["failed_models"], run
    # Read at once: a retrain the run started (the demo data drifts under the default settings) would replace
    # the checked champion only after its training and gate.
    check = cli_json(stack, "drift", f"{machine}/status")
    assert check is not None, run
    assert check["machine_name"] == machine and check["status"] in {"stable", "moderate", "drift", "no_data"}, check
    table = cli(stack, "drift", machine)
    assert table.returncode == 0 and "last drift check" in table.stdout and check["status"] in table.stdout
    for feature in check["top_features"]:  # per feature, whatever fields the check recorded
        assert str(feature.get("feature", feature.get("name", ""))) in table.stdout
    # Whatever the run started finishes here, so the next tests' retrains never meet an in-flight lock.
    while [t for t in requests.get(f"{stack.api_url}/retrains/{run_id}", timeout=30).json()["triggers"]
           if t["status"] in ("triggered", "running")]:
        assert time.monotonic() < deadline, run_id
        time.sleep(1)


def test_the_runbook_s_retrain_triggers_and_resolve_run_against_the_routes(stack: Stack,
                                                                            trained: dict[str, Any]) -> None:
    machine = trained["machine"]
    if trained["job"].get("gate_decision") != "promoted":
        pytest.skip("the trained model is not the champion: nothing to retrain by name")
    run = cli_json(stack, "retrain", f"{machine}/status", "--force", "--wait", "--poll", "1")
    (trigger,) = run["triggers"]
    assert run["status"] == "succeeded" and run["summary"]["by_decision"] == {"forced": 1}, run
    assert (trigger["reason"], trigger["status"]) == ("forced", "completed"), run
    assert cli_json(stack, "status", trigger["process_id"])["status"] == "completed"
    listed = cli_json(stack, "triggers", "--machine", machine, "--run", run["run_id"])
    assert [t["trigger_id"] for t in listed["triggers"]] == [trigger["trigger_id"]]
    table = cli(stack, "triggers", "--machine", machine)
    assert table.returncode == 0 and trigger["trigger_id"][:8] in table.stdout
    # Resolving is for failed triggers: a completed one is refused with the API's message, nothing changes.
    refused = cli(stack, "triggers", "resolve", trigger["trigger_id"], "--reason", "nothing to resolve")
    assert refused.returncode == 2 and "only failed triggers can be resolved" in " ".join(refused.stderr.split())
    none_failed = cli_json(stack, "triggers", "resolve", "--all-failed", "--machine", machine, "--reason",
                           "checked by hand")
    assert none_failed == {"resolved": []}
    unknown = cli(stack, "retrain", "NOPE-404/status", "--force")
    assert unknown.returncode == 2 and "body.machine_name" in unknown.stderr


def test_import_is_a_subcommand_and_modelforge_import_still_works(stack: Stack, tmp_path: Path) -> None:
    sample = REPO_ROOT / "tests" / "fixtures" / "cmapss_fd001_sample.txt"
    new = cli(stack, "import", "cmapss", str(sample), "--bucket", "unused-bucket", "--dry-run")
    assert new.returncode == 0, new.stderr
    old = subprocess.run([sys.executable, "-m", "modelforge.importer", "cmapss", str(sample), "--bucket",
                          "unused-bucket", "--dry-run"], capture_output=True, text=True, timeout=120,
                         env=environment(stack))
    assert old.returncode == 0 and old.stdout == new.stdout
