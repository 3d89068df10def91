"""benchmarks/gpu.py writes its whole result file itself, with repeats (issue 16, finding 10): the committed
gpu.json had been assembled by hand from two single runs. Run here on a tiny CPU-only input, twice per arm.

With the CUDA arm forced on (``gpu_present``), that arm asks the pipeline for CUDA and, without a GPU, gets
the CPU, which the file records as such; it exercises every section a GPU run writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gpu
from modelforge.domain.xgb import cuda_available as xgb_cuda_available

TINY = ["--indicators", "status", "--budget", "1", "--max-rounds", "10"]


def _stats_of_two(stats: dict[str, Any]) -> None:
    assert stats["n"] == 2 and len(stats["values"]) == 2, stats
    assert stats["std"] is not None and stats["stderr"] is not None, stats  # a spread, not a single run
    assert stats["min"] <= stats["mean"] <= stats["max"], stats


def test_the_writer_writes_every_section_with_a_spread_over_the_repeats(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "gpu_present", lambda: True)
    if xgb_cuda_available():
        pytest.skip("a usable GPU: the CUDA arm would train there (run make bench-gpu instead)")
    output = tmp_path / "gpu.json"
    assert gpu.main(["--sizes", "4x20", "--singles", "0", "--repeats", "2", *TINY, "--output", str(output)]) == 0
    results = json.loads(output.read_text())

    documented = re.findall(r"``(\w+)``", (gpu.__doc__ or "").split("Its top-level sections:", 1)[1].split("(see")[0])
    assert documented == list(gpu.SECTIONS)  # the docstring names every section the file has, in order
    assert list(results) == list(gpu.SECTIONS)
    assert results["repeats"] == 2 and results["seeds"] == [0, 1]
    assert results["command"].startswith("python -m benchmarks.gpu --sizes 4x20")
    assert results["summary"]["gpu_compared"] is True and results["summary"]["runs"] == 1
    (demo,) = results["sets"]
    assert [run["dataset"] for run in demo["runs"]] == ["demo fleet of 4 x 20 days"]
    for run in demo["runs"]:
        for device in ("cpu", "cuda"):
            side = run[device]
            assert side["device_requested"] == device and side["device_used"] == ["cpu"]  # what really trained
            for key in gpu.ARM_STATISTICS:
                _stats_of_two(side[key])
            assert {"recall", "precision", "pr_auc"} <= set(side["metrics"])
            for stats in side["metrics"].values():
                _stats_of_two(stats)
        for key in gpu.PAIR_STATISTICS[:2]:
            _stats_of_two(run[key])
        assert set(run["cuda_minus_cpu"]) == set(run["cpu"]["metrics"])
        for stats in run["cuda_minus_cpu"].values():
            _stats_of_two(stats)
    assert not list(tmp_path.glob("*.partial"))


def test_without_a_gpu_the_file_says_nothing_was_compared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "gpu_present", lambda: False)
    output = tmp_path / "gpu.json"
    gpu.main(["--sizes", "4x30", "--singles", "1", "--repeats", "1", *TINY, "--output", str(output)])
    results = json.loads(output.read_text())
    assert list(results) == list(gpu.SECTIONS) and results["summary"]["gpu_compared"] is False
    single, fleet = results["sets"][0]["runs"]
    assert single["dataset"] == "demo machine MOTOBOMBA-001, 30 days" and fleet["dataset"].startswith("demo fleet")
    for run in (single, fleet):
        assert "cuda" not in run and not set(gpu.PAIR_STATISTICS) & set(run)
        assert run["cpu"]["seconds"]["std"] is None  # one repeat: no spread, and none is pretended


def test_a_partial_result_is_never_written(tmp_path: Path) -> None:
    output = tmp_path / "gpu.json"
    with pytest.raises(ValueError, match="partial"):
        gpu.write_results({"benchmark": "x", "sets": []}, output)
    assert not output.exists()
