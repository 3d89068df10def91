"""The suite's own guards for running on several workers (tests/conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import _fail_on_shared_nodeids, _tier, _uses_the_session_stack


def _items(*nodeids: str) -> list[Any]:
    return [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]


def test_two_tests_sharing_a_nodeid_fail_the_session() -> None:
    with pytest.raises(pytest.UsageError, match=r"tests/e2e/test_x.py::test_a"):
        _fail_on_shared_nodeids(_items("tests/e2e/test_x.py::test_a", "tests/e2e/test_x.py::test_b",
                                       "tests/e2e/test_x.py::test_a"))


def test_distinct_nodeids_pass() -> None:
    _fail_on_shared_nodeids(_items("tests/unit/test_x.py::test_a", "tests/unit/test_x.py::test_a[1]"))


def test_a_scope_s_tier_is_its_folder() -> None:
    assert _tier("tests/integration/test_kill_points.py") == "integration"
    assert _tier("tests/e2e (the session's local cloud)") == "e2e"
    assert _tier("tests/conftest.py") == ""


def test_the_e2e_modules_on_the_session_s_cloud_are_found_and_the_fuzzer_is_not() -> None:
    assert _uses_the_session_stack("tests/e2e/test_api_over_http.py")
    assert _uses_the_session_stack("tests/e2e/test_cli.py")
    assert not _uses_the_session_stack("tests/e2e/test_fuzz.py")  # starts a cloud of its own
    assert not _uses_the_session_stack("tests/unit/test_cli.py")
