"""Where moto differs from AWS in a way this service depends on, make it behave like AWS.

DynamoDB serializes conflicting writes and applies a TransactWriteItems all-or-nothing. moto applies a
transaction item by item and rolls back by restoring a deep copy of the tables, so under concurrency a
transaction can interleave with, or its rollback undo, another request's writes. The registry's "exactly one
champion" rests on DynamoDB's guarantee, so every moto DynamoDB write here takes one lock.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_applied = False


def serialize_dynamodb_writes() -> None:
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))
    _applied = True
