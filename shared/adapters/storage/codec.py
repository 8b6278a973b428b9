"""Validation and entity mapping for the sync state store (shared by the adapter and its fake).

Everything a caller passes is checked here before anything is written, so bad input fails the
same way against Table Storage and against the in-memory fake.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from shared.domain.commands import ACCOUNT_ID, MAX_BATCH_NUMBER, RUN_ID
from shared.errors import BadRequest, System
from shared.services.ports import C, SyncKey

# Table keys may not contain / \ # ? or control characters; we allow far less, so a key can be
# read back and split unambiguously on "|".
_KEY_PART = ACCOUNT_ID  # also the sync type's
_RUN_ID = RUN_ID
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SCALARS: tuple[type, ...] = (bool, int, float, str, datetime)
_INT64_MAX = 2**63 - 1
COUNTER_PREFIX = "n_"


def partition_key(key: SyncKey) -> str:
    for label, part in (("account", key.account), ("sync type", key.sync_type)):
        if not isinstance(part, str) or not _KEY_PART.fullmatch(part):
            raise ValueError(
                f"invalid {label} {part!r}: expected 1-100 letters, digits, '.', '_' or '-'"
            )
    return f"{key.account}|{key.sync_type}"


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"invalid run id {run_id!r}: expected 1-64 letters, digits, '.', '_', ':' or '-'"
        )
    return run_id


def check_batch_number(batch: int) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or not 0 <= batch <= MAX_BATCH_NUMBER:
        raise ValueError(
            f"invalid batch number {batch!r}: expected an int in 0..{MAX_BATCH_NUMBER}"
        )
    return batch


def check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX:
        raise ValueError(f"invalid {name} {value!r}: expected a non-negative int")
    return value


def check_counters(counters: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(counters, Mapping):
        raise ValueError("counters must be a mapping of name to count")
    for name, value in counters.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"invalid counter name {name!r}: expected snake_case, max 63 chars")
        check_count(f"counter {name}", value)
    return dict(counters)


def utc(value: datetime, what: str) -> datetime:
    """The same instant in UTC; naive datetimes are refused because their zone is a guess."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def plain_utc(value: datetime) -> datetime:
    """A stored datetime as a plain ``datetime`` in UTC (the SDK returns its own subclass)."""
    value = value.astimezone(UTC)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, tzinfo=UTC,
    )


def int64(value: int) -> EntityProperty:
    # Always Int64, so a value that outgrows Int32 never changes the stored type.
    return EntityProperty(value, EdmType.INT64)


def read_int(entity: Mapping[str, Any], name: str) -> int:
    value = entity.get(name, 0)
    if isinstance(value, EntityProperty):
        value = value.value
    return int(value)


# --- checkpoints: frozen dataclasses of scalars ---------------------------------------------------
@functools.cache
def checkpoint_fields(kind: Any) -> tuple[tuple[str, type, bool], ...]:
    """(name, scalar type, optional) per field; ValueError if ``kind`` is not a valid checkpoint."""
    name = getattr(kind, "STATE_NAME", None)
    label = getattr(kind, "__name__", repr(kind))
    is_dataclass = isinstance(kind, type) and dataclasses.is_dataclass(kind)
    if not is_dataclass or not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{kind!r} is not a checkpoint type: a dataclass with a STATE_NAME")
    hints = typing.get_type_hints(kind)
    fields = []
    for field in dataclasses.fields(kind):
        hint = hints[field.name]
        optional = False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            optional = len(args) < len(typing.get_args(hint))
            hint = args[0] if len(args) == 1 else None
        if hint not in _SCALARS:
            raise ValueError(f"{label}.{field.name}: unsupported type {hints[field.name]}")
        fields.append((field.name, hint, optional))
    return tuple(fields)


def checkpoint_row_key(kind: Any) -> str:
    checkpoint_fields(kind)
    return f"checkpoint|{kind.STATE_NAME}"


def encode_checkpoint(value: Any) -> dict[str, Any]:
    """Entity properties for ``value``; ValueError if a field holds the wrong type."""
    properties: dict[str, Any] = {}
    kind: Any = type(value)
    for name, scalar, optional in checkpoint_fields(kind):
        item: Any = getattr(value, name)
        if item is None and optional:
            continue  # Table Storage has no nulls: an absent property reads back as None
        if not _is_scalar(item, scalar):
            raise ValueError(
                f"{type(value).__name__}.{name} must be {scalar.__name__}, got {item!r}"
            )
        if scalar is datetime:
            properties[name] = utc(item, f"{type(value).__name__}.{name}")
        elif scalar is int:
            if not -_INT64_MAX - 1 <= item <= _INT64_MAX:
                raise ValueError(f"{type(value).__name__}.{name} does not fit in 64 bits")
            properties[name] = int64(item)
        else:
            properties[name] = item
    return properties


def decode_checkpoint(kind: type[C], entity: Mapping[str, Any]) -> C:
    """The checkpoint stored in ``entity``; ``BadRequest`` if it does not fit ``kind`` any more."""
    values: dict[str, Any] = {}
    for name, scalar, optional in checkpoint_fields(kind):
        item = entity.get(name)
        if isinstance(item, EntityProperty):
            item = item.value
        if item is None:
            if not optional:
                raise _stored_mismatch(kind, f"lacks field {name}")
        elif scalar is datetime and isinstance(item, datetime):
            item = plain_utc(item)
        elif scalar is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        elif not _is_scalar(item, scalar):
            raise _stored_mismatch(kind, f"field {name} is not {scalar.__name__}")
        values[name] = item
    return kind(**values)


def _is_scalar(item: Any, scalar: type) -> bool:
    # bool is an int subclass; a flag stored where a count belongs is a mistake, not a count
    return isinstance(item, scalar) and (scalar is bool or not isinstance(item, bool))


def _stored_mismatch(kind: Any, detail: str) -> BadRequest:
    return BadRequest(
        System.TABLES, f"stored checkpoint {kind.STATE_NAME!r} {detail}", operation="get_checkpoint"
    )
