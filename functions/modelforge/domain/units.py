"""Time units of the domain code, which counts time in epoch nanoseconds (``int64``), as pandas stores it."""

from __future__ import annotations

MINUTE_NS = 60 * 10**9
"""Nanoseconds in a minute."""
