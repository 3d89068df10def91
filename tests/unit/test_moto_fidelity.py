"""localcloud.moto_fidelity: the lock on moto's DynamoDB writes is applied for as long as someone needs it, and
moto is exactly as installed afterwards (the process's other tests share moto's classes)."""

from __future__ import annotations

import pytest
from moto.dynamodb.models import DynamoDBBackend

from localcloud import moto_fidelity
from localcloud.moto_fidelity import (
    dynamodb_writes_serialized,
    restore_dynamodb_writes,
    serialize_dynamodb_writes,
    serialized_dynamodb_writes,
)

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def _own_methods() -> dict[str, object]:
    return {name: DynamoDBBackend.__dict__.get(name) for name in WRITES}


@pytest.fixture(autouse=True)
def _unpatched() -> None:
    assert not dynamodb_writes_serialized(), "an earlier test left moto's DynamoDB writes locked"


def test_the_lock_wraps_every_write_and_restoring_puts_moto_back() -> None:
    installed = _own_methods()
    resolved = {name: getattr(DynamoDBBackend, name) for name in WRITES}  # own or inherited
    serialize_dynamodb_writes()
    try:
        assert dynamodb_writes_serialized()
        for name in WRITES:
            assert DynamoDBBackend.__dict__[name].__wrapped__ is resolved[name], name
    finally:
        restore_dynamodb_writes()
    assert not dynamodb_writes_serialized()
    assert _own_methods() == installed


def test_nested_users_keep_the_lock_until_the_last_one_is_done() -> None:
    installed = _own_methods()
    with serialized_dynamodb_writes():
        locked = _own_methods()
        with serialized_dynamodb_writes():
            assert _own_methods() == locked  # not wrapped twice
        assert dynamodb_writes_serialized() and _own_methods() == locked
    assert _own_methods() == installed
    restore_dynamodb_writes()  # one more than applied: nothing to undo
    assert _own_methods() == installed and moto_fidelity._users == 0


def test_the_context_manager_restores_moto_when_the_block_raises() -> None:
    installed = _own_methods()
    with pytest.raises(RuntimeError, match="boom"), serialized_dynamodb_writes():
        raise RuntimeError("boom")
    assert _own_methods() == installed
