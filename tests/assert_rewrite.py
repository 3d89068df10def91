"""Loaded with ``-p`` (pyproject.toml addopts), before the plugins installed as packages: pytest marks every
module of such a plugin's distribution for assertion rewriting, and with no bytecode cache to reuse (a fresh
clone, or PYTHONDONTWRITEBYTECODE) each process that collects (each xdist worker) rewrites and compiles them
again. For schemathesis, hypothesis and anyio that is some 350 modules whose own asserts no test reads: about
10 s of CPU a process, half of the collection's (measured: ``pytest --collect-only`` 19.81 s user with
rewriting, 10.08 s with ``--assert=plain``). The tests' own modules and conftests are rewritten as before."""

from __future__ import annotations

from typing import Any

# Plugins whose modules are imported, not tested, here; their failures still raise, only without pytest's
# rewritten explanation.
UNREWRITTEN = ("schemathesis", "hypothesis", "_hypothesis_pytestplugin", "_hypothesis_globals", "anyio")


def pytest_addhooks(pluginmanager: Any) -> None:
    """Called as this plugin is registered, after pytest marked the installed plugins and before it imports
    them. ``_must_rewrite`` is the hook's private set of marked names: if a pytest release renames it, nothing
    changes but the speed."""
    marked = getattr(getattr(pluginmanager, "rewrite_hook", None), "_must_rewrite", None)
    if isinstance(marked, set):
        marked.difference_update(UNREWRITTEN)
