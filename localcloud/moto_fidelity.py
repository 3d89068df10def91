"""Where moto differs from AWS in a way this service depends on, make it behave like AWS.

DynamoDB serializes conflicting writes and applies a TransactWriteItems all-or-nothing. moto applies a
transaction item by item and rolls back by restoring a deep copy of the tables, so under concurrency a
transaction can interleave with, or its rollback undo, another request's writes. The registry's "exactly one
champion" rests on DynamoDB's guarantee, so every moto DynamoDB write here takes one lock.

The patch is process-wide (moto's backends are classes shared by every mock and server in the process), so
whoever applies it undoes it: ``restore_dynamodb_writes()`` after ``serialize_dynamodb_writes()`` (counted, so
nested users keep it until the last one is done), or ``with serialized_dynamodb_writes():``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_GUARD = threading.Lock()
_users = 0
_replaced: dict[str, Any] = {}  # name -> what DynamoDBBackend's own __dict__ held before (None: inherited)


def serialize_dynamodb_writes() -> None:
    global _users
    with _GUARD:
        _users += 1
        if _users > 1:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name in _WRITES:
            original = getattr(DynamoDBBackend, name, None)
            if original is None:
                continue

            def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
                with _LOCK:
                    return __original(*args, **kwargs)

            _replaced[name] = DynamoDBBackend.__dict__.get(name)
            setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


def restore_dynamodb_writes() -> None:
    """Undoes one ``serialize_dynamodb_writes()``; the last one puts moto's own methods back."""
    global _users
    with _GUARD:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name, own in _replaced.items():
            if own is None:
                delattr(DynamoDBBackend, name)
            else:
                setattr(DynamoDBBackend, name, own)
        _replaced.clear()


def dynamodb_writes_serialized() -> bool:
    return _users > 0


@contextlib.contextmanager
def serialized_dynamodb_writes() -> Iterator[None]:
    serialize_dynamodb_writes()
    try:
        yield
    finally:
        restore_dynamodb_writes()
