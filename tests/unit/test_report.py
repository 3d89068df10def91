"""The per-job HTML report (modelforge.domain.report): self-contained, with real PNG plots."""

from __future__ import annotations

import base64
import re
import struct

import matplotlib
import pytest

from localcloud.demo_data import generate_machine_telemetry
from modelforge.domain.pipeline import PipelineConfig, TrainedModel, train_model
from modelforge.domain.report import render_plots, render_report
from modelforge.domain.search import SearchConfig

CONFIG = PipelineConfig(search=SearchConfig(budget=1, max_rounds=40, nthread=1))
NAME = "<M&1>"


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    frame = generate_machine_telemetry("M", days=30, seed=1).telemetry
    return {indicator: train_model(frame, machine_name=NAME, indicator=indicator, config=CONFIG)
            for indicator in ("status", "health")}


@pytest.fixture(scope="module")
def pages(models: dict[str, TrainedModel]) -> dict[str, str]:
    """Each model's report, rendered once: rendering is pure, and the tests only read the page."""
    return {indicator: render_report(model) for indicator, model in models.items()}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    return width, height


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]


def test_status_report_embeds_the_three_plots_and_the_numbers(models: dict[str, TrainedModel],
                                                              pages: dict[str, str]) -> None:
    trained = models["status"]
    page = pages["status"]
    images = embedded_pngs(page)
    assert len(images) == 4  # timeline, close-up of failures, precision-recall, feature importance
    for image in images:
        width, height = png_size(image)
        assert width > 300 and height > 200
    for text in ("Precision-recall curve", "Feature importance", "Predicted risk against real failures",
                 "Confusion matrix", "failures caught", "Lineage", trained.data["fingerprint"]):
        assert text in page
    assert f"{trained.metrics['recall']:.4g}" in page


def test_health_report_plots_predicted_against_true(models: dict[str, TrainedModel], pages: dict[str, str]) -> None:
    plots = render_plots(models["health"])
    assert set(plots) == {"timeline", "zoom", "importance", "predicted_vs_true"}
    page = pages["health"]
    assert "Predicted against true minutes to failure" in page and "RMSE" in page
    assert "Confusion matrix" not in page


def test_names_are_escaped_and_matplotlib_is_headless(pages: dict[str, str]) -> None:
    page = pages["status"]
    assert "&lt;M&amp;1&gt;" in page and NAME not in page
    assert matplotlib.get_backend().lower() == "agg"
