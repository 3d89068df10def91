"""Ready means ready, on the local cloud: GET /health says "starting" until the stack and its data are in place,
so a script that waits for it (`python -m localcloud wait-ready`) can train a demo machine at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from localcloud.cloud import LocalCloud
from localcloud.demo import load_demo_data
from localcloud.template import REPO_ROOT
from tests.conftest import free_port


def test_health_says_starting_until_the_data_is_loaded(tmp_path: Path) -> None:
    cloud = LocalCloud(aws_port=free_port(), api_port=free_port(), state_dir=tmp_path).start(ready=False)
    try:
        starting = requests.get(f"{cloud.api_url}/health", timeout=30)
        assert starting.status_code == 503 and starting.json()["status"] == "starting"
        # What a script that took the open port for readiness would have got:
        early = requests.post(f"{cloud.api_url}/train", json={"indicator": "status", "machine_name": "MOTOBOMBA-001"},
                              timeout=30)
        assert early.status_code == 422, early.text

        load_demo_data(cloud.stack, machines=1, days=10)
        cloud.mark_ready()

        ready = requests.get(f"{cloud.api_url}/health", timeout=30)
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
    finally:
        cloud.stop()


def test_a_script_that_waits_for_readiness_can_train_a_demo_machine(tmp_path: Path) -> None:
    api_port, aws_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "--aws-port", str(aws_port), "--api-port", str(api_port),
         "--machines", "3", "--days", "10", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        waited = subprocess.run([sys.executable, "-m", "localcloud", "wait-ready", "--api-url", api_url,
                                 "--timeout", "180"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
                                check=False)
        assert waited.returncode == 0, waited.stderr + (tmp_path / "server.log").read_text()
        assert json.loads(waited.stdout)["status"] == "ok"

        machines = {m["machine_name"] for m in requests.get(f"{api_url}/machines", timeout=30).json()["machines"]}
        assert "MOTOBOMBA-003" in machines
        answer = requests.post(f"{api_url}/train", json={"indicator": "status", "machine_name": "MOTOBOMBA-003"},
                               timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
