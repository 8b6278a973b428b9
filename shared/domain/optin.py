"""Opt-in type rules (architecture §1.1 C1). Pure: standard library only.

A record's opt-in type is only ever replaced by a higher one (Unknown < Single < Double <
VerifiedDouble), so the value is the maximum ever seen: order-independent and safe to apply
twice. Batches are routed to shards by address so that one address is never applied by two
workers at once (Service Bus sessions): the bulk write cannot be made conditional on a row
version, so serialising per address is what keeps a concurrent lower value from overwriting a
higher one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.domain.model import OptInType


def higher(current: OptInType | None, incoming: OptInType) -> OptInType:
    """The value a record should hold after seeing ``incoming``."""
    return incoming if current is None or incoming > current else current


def strongest_per_address(changes: Iterable[tuple[str, OptInType]]) -> dict[str, OptInType]:
    """Collapse several changes of one address (several accounts, repeats) to the highest."""
    strongest: dict[str, OptInType] = {}
    for key, value in changes:
        strongest[key] = higher(strongest.get(key), value)
    return strongest


@dataclass(frozen=True, slots=True)
class RecordValue:
    """A CRM record's current opt-in type, keyed by its matched address."""

    table: str
    row_id: str
    email_key: str
    opt_in: OptInType | None


@dataclass(frozen=True, slots=True)
class OptInUpdate:
    record: RecordValue
    new_value: OptInType


def decide_updates(
    records: Iterable[RecordValue], incoming: Mapping[str, OptInType]
) -> list[OptInUpdate]:
    """The writes that raise records to the incoming types; records already there are left alone."""
    updates: list[OptInUpdate] = []
    for record in records:
        value = incoming.get(record.email_key)
        if value is None:
            continue
        new_value = higher(record.opt_in, value)
        if new_value != record.opt_in:
            updates.append(OptInUpdate(record, new_value))
    return updates


def shard_of(email_key: str, shards: int) -> int:
    """A stable shard for an address (the same in every process and release)."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    digest = hashlib.sha256(email_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards
