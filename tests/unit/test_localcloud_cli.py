"""``python -m localcloud --function-env``: a function's settings over the template's, for a script (the e2e
tier's stack) that does not need the default search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcloud import __main__ as cli
from localcloud.cloud import LocalCloud


def test_each_function_env_flag_sets_one_variable_of_one_function() -> None:
    args = cli._parser().parse_args(["--function-env", "TrainingFunction:SEARCH_BUDGET=1",
                                     "--function-env=TrainingFunction:MAX_BOOST_ROUNDS=100",
                                     "--function-env", "DriftFunction:DRIFT_WINDOW_DAYS=7=x"])
    assert cli._environment_overrides(args.function_env) == {
        "TrainingFunction": {"SEARCH_BUDGET": "1", "MAX_BOOST_ROUNDS": "100"},
        "DriftFunction": {"DRIFT_WINDOW_DAYS": "7=x"},  # the value is everything after the first "="
    }
    assert cli._parser().parse_args([]).function_env == []


@pytest.mark.parametrize("value", ["SEARCH_BUDGET=1", "TrainingFunction:SEARCH_BUDGET", ":SEARCH_BUDGET=1",
                                   "TrainingFunction:=1"])
def test_a_malformed_function_env_is_refused(value: str, capsys: pytest.CaptureFixture[Any]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args(["--function-env", value])
    assert exited.value.code == 2
    assert "is not FUNCTION:NAME=VALUE" in capsys.readouterr().err


def test_the_cloud_gives_the_function_the_variable_over_the_template_s(tmp_path: Path) -> None:
    cloud = LocalCloud(state_dir=tmp_path, environment_overrides={"TrainingFunction": {"SEARCH_BUDGET": "1"}})
    assert cloud.stack.functions["TrainingFunction"].environment["SEARCH_BUDGET"] == "1"
    untouched = LocalCloud(state_dir=tmp_path).stack.functions["TrainingFunction"].environment
    assert untouched.get("SEARCH_BUDGET") != "1"
