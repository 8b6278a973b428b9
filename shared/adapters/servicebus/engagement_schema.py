"""The ``engagement-batch`` message schema (version 1), registered in ``message_codec``.

| field                  | type                                                              |
|------------------------|-------------------------------------------------------------------|
| ``run_id``, ``account``,| as ``optin-batch``                                               |
| ``batch``, ``dry_run`` |                                                                   |
| ``items``              | list of ``{"email": str, "kind": str, "at": ISO 8601 date-time    |
|                        | with zone, "source_id": str, "title": str, "details": object}``   |

An item that is not a valid event (an address that matches nobody, an unknown kind) is a
format error: the reader only publishes events it could build.
"""

from __future__ import annotations

import sys
from typing import Any

from shared.adapters.servicebus.json_fields import JsonFields
from shared.domain.commands import ApplyEngagementBatch, BatchRef
from shared.domain.engagement import EngagementEvent
from shared.errors import MessageFormatError

ENGAGEMENT_SCHEMA = "engagement-batch"
ENGAGEMENT_VERSION = 1


def engagement_item(event: EngagementEvent) -> dict[str, Any]:
    return {"email": event.email, "kind": str(event.kind), "at": event.at.isoformat(),
            "source_id": event.source_id, "title": event.title, "details": dict(event.details)}


def decode_engagement(fields: JsonFields) -> ApplyEngagementBatch:
    items = []
    raw_items = fields.array("items")
    for index, raw in enumerate(raw_items):
        item = fields.nested(f"items[{index}]", raw)
        details = raw.get("details") if isinstance(raw, dict) else None
        if not isinstance(details, dict):
            raise MessageFormatError(f"{fields.label}: items[{index}].details must be an object")
        try:
            items.append(EngagementEvent(
                email=item.text("email"), kind=sys.intern(item.text("kind")),  # type: ignore[arg-type]
                at=item.timestamp("at"), source_id=item.text("source_id"),
                title=item.text("title"), details=details,
            ))
        except ValueError as error:
            raise MessageFormatError(f"{fields.label}: items[{index}]: {error}") from None
        raw_items[index] = None
    try:
        ref = BatchRef(fields.text("account", required=True), fields.text("run_id", required=True),
                       fields.integer("batch"), fields.flag("dry_run", False))
    except ValueError as error:
        raise MessageFormatError(f"{fields.label}: {error}") from None
    return ApplyEngagementBatch(ref, tuple(items))
