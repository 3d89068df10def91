"""Conversions between Python values and what the DynamoDB resource API accepts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def to_dynamo(value: Any) -> Any:
    """Floats become Decimals (DynamoDB rejects floats); NaN and infinity become None."""
    return json.loads(json.dumps(value, default=str, allow_nan=True), parse_float=_decimal_or_none,
                      parse_constant=lambda _: None)


def _decimal_or_none(text: str) -> Decimal | None:
    number = Decimal(text)
    return number if number.is_finite() else None


def from_dynamo(value: Any) -> Any:
    """Decimals back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value
