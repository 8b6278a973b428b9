"""The ``suppression-batch`` message schema (version 1), registered in ``message_codec``.

| field                      | type                                                            |
|----------------------------|-----------------------------------------------------------------|
| ``run_id``, ``account``,   | as ``optin-batch``                                              |
| ``batch``, ``dry_run``     |                                                                 |
| ``account_name``           | str: the email account's name when the batch was published      |
| ``update_do_not_bulk_email``| bool: the account's option when the batch was published       |
| ``dnbe_accounts``          | list of str (optional, default []): the email accounts whose     |
|                            | option is on then                                               |
| ``items``                  | list of ``{"email": str, "at": ISO 8601 date-time with zone,    |
|                            | "reason": str}``; a blank reason is a resubscription            |

As for opt-in batches, an item's email may be blank or malformed and its reason unknown: the
applier counts and skips those; only a wrong structure or type is a format error.
"""

from __future__ import annotations

import sys
from typing import Any

from shared.adapters.servicebus.json_fields import JsonFields
from shared.domain.commands import ApplySuppressionBatch, BatchRef, SuppressionEvent
from shared.errors import MessageFormatError

SUPPRESSION_SCHEMA = "suppression-batch"
SUPPRESSION_VERSION = 1


def suppression_item(event: SuppressionEvent) -> dict[str, Any]:
    return {"email": event.email, "at": event.at.isoformat(), "reason": event.reason}


def suppression_fields(command: ApplySuppressionBatch) -> dict[str, Any]:
    """The body fields besides the envelope and the batch identity."""
    return {
        "account_name": command.account_name,
        "update_do_not_bulk_email": command.update_do_not_bulk_email,
        "dnbe_accounts": list(command.dnbe_accounts),
        "items": [suppression_item(event) for event in command.items],
    }


def decode_suppression(fields: JsonFields) -> ApplySuppressionBatch:
    items = []
    raw_items = fields.array("items")
    for index, raw in enumerate(raw_items):
        item = fields.nested(f"items[{index}]", raw)
        items.append(SuppressionEvent(
            email=item.text("email"), at=item.timestamp("at"),
            reason=sys.intern(item.text("reason")),  # a dozen names: share them
        ))
        raw_items[index] = None  # each parsed item dropped once converted
    try:
        ref = BatchRef(fields.text("account", required=True), fields.text("run_id", required=True),
                       fields.integer("batch"), fields.flag("dry_run", False))
    except ValueError as error:
        raise MessageFormatError(f"{fields.label}: {error}") from None
    accounts = fields.array("dnbe_accounts") if "dnbe_accounts" in fields else []
    if not all(isinstance(account, str) for account in accounts):
        raise MessageFormatError(f"{fields.label}: 'dnbe_accounts' must be a list of strings")
    return ApplySuppressionBatch(
        ref, account_name=fields.text("account_name", required=True),
        update_do_not_bulk_email=fields.flag("update_do_not_bulk_email", False),
        items=tuple(items), dnbe_accounts=tuple(accounts),
    )
