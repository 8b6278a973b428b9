"""Dead letters as the commands print them: a row of ``list``, the detail of ``show``.

Addresses are masked everywhere unless ``show --reveal`` asks: in items, in error descriptions
(Dataverse may quote a value back) and in titles. Engagement details (form answers, clicked URLs)
are personal too, so only their field names are shown masked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ops.dead_letters.decoding import BatchView, describe
from ops.dead_letters.masking import mask_email, mask_text
from ops.dead_letters.model import PARKING_PROPERTIES, REPLAY_NUMBER, REPLAY_OF, DeadLetter
from ops.humanize import duration, utc_text
from shared.domain.commands import (
    ApplyEngagementBatch,
    ApplyOptInBatch,
    ApplySuppressionBatch,
    QueueCommand,
)

LIST_HEADERS = ("queue", "where", "message id", "reason", "run", "email account", "batch",
                "sync type", "age", "deliveries", "description")
DESCRIPTION_WIDTH = 60
RAW_BODY_CHARS = 4000


def list_record(letter: DeadLetter, now: dt.datetime) -> dict[str, Any]:
    """One dead letter as ``list --json`` gives it (and as its table row is made from)."""
    view = describe(letter)
    age = letter.age(now)
    return {
        "queue": letter.queue, "where": str(letter.where), "entity": letter.entity,
        "message_id": letter.message_id, "sequence_number": letter.sequence_number,
        "reason": letter.reason, "description": mask_text(letter.description),
        "run_id": view.ref.run_id if view.ref else None,
        "email_account_id": view.ref.account if view.ref else None,
        "batch": view.ref.batch if view.ref else None,
        "dry_run": view.ref.dry_run if view.ref else None,
        "sync_type": view.sync_type.label if view.sync_type else None,
        "items": view.items, "readable": view.unreadable is None,
        "enqueued_at": letter.enqueued_at,
        "age_seconds": None if age is None else round(age.total_seconds()),
        "delivery_count": letter.delivery_count, "session_id": letter.session_id,
        "replay_of": letter.first_id if letter.replay_number else None,
        "replay_number": letter.replay_number,
    }


def list_row(record: dict[str, Any]) -> list[str | int | None]:
    description = str(record["description"]).replace("\n", " ")
    if len(description) > DESCRIPTION_WIDTH:
        description = description[:DESCRIPTION_WIDTH - 1] + "…"
    age = record["age_seconds"]
    return [record["queue"], record["where"], record["message_id"], record["reason"] or None,
            record["run_id"], record["email_account_id"], record["batch"], record["sync_type"],
            None if age is None else duration(age), record["delivery_count"],
            description or None]


def show_record(letter: DeadLetter, now: dt.datetime, *, reveal: bool) -> dict[str, Any]:
    """One dead letter in full: its header fields, then its items."""
    view = describe(letter)
    record = list_record(letter, now)
    if reveal:
        record["description"] = letter.description
    record["enqueued_at_text"] = utc_text(letter.enqueued_at)
    # The app's properties name the batch only; a message from elsewhere may carry anything.
    record["properties"] = {
        name: value if reveal or not isinstance(value, str) else mask_text(value)
        for name, value in sorted(letter.application_properties.items())
        if name not in PARKING_PROPERTIES and name not in (REPLAY_OF, REPLAY_NUMBER)
    }
    record["body_bytes"] = len(letter.body)
    if view.command is not None:
        record.update(_command_fields(view.command, reveal=reveal))
    else:
        record["unreadable"] = view.unreadable
        if reveal:
            record["body"] = letter.body.decode("utf-8", "replace")[:RAW_BODY_CHARS]
    return record


def _command_fields(command: QueueCommand, *, reveal: bool) -> dict[str, Any]:
    def email(address: str) -> str:
        return address if reveal else mask_email(address)

    if isinstance(command, ApplySuppressionBatch):
        return {
            "account_name": command.account_name,
            "update_do_not_bulk_email": command.update_do_not_bulk_email,
            "dnbe_accounts": list(command.dnbe_accounts),
            "item_list": [{"email": email(e.email), "at": e.at.isoformat(),
                           "reason": e.reason or "(resubscribed)"} for e in command.items],
        }
    if isinstance(command, ApplyEngagementBatch):
        return {"item_list": [
            {"email": email(e.email), "kind": str(e.kind), "at": e.at.isoformat(),
             "source_id": e.source_id, "title": e.title if reveal else mask_text(e.title),
             "details": dict(e.details) if reveal else sorted(e.details)}
            for e in command.items
        ]}
    assert isinstance(command, ApplyOptInBatch)
    return {"item_list": [{"email": email(c.email), "opt_in_type": c.opt_in_type}
                          for c in command.items]}


HEADER_FIELDS = (
    ("queue", "queue"), ("where", "where"), ("entity", "held in"), ("message_id", "message id"),
    ("sequence_number", "sequence number"), ("session_id", "session"),
    ("enqueued_at_text", "enqueued"), ("delivery_count", "deliveries"), ("reason", "reason"),
    ("description", "description"), ("sync_type", "sync type"), ("run_id", "run"),
    ("email_account_id", "email account"), ("batch", "batch"), ("dry_run", "dry run"),
    ("items", "items"), ("replay_of", "replay of"), ("replay_number", "replay number"),
    ("account_name", "account name"), ("update_do_not_bulk_email", "update Do not bulk email"),
    ("dnbe_accounts", "Do not bulk email accounts"), ("body_bytes", "body bytes"),
    ("unreadable", "unreadable"),
)


def item_headers(view: BatchView) -> tuple[str, ...]:
    if isinstance(view.command, ApplySuppressionBatch):
        return ("email", "at", "reason")
    if isinstance(view.command, ApplyEngagementBatch):
        return ("email", "kind", "at", "source_id", "title", "details")
    return ("email", "opt_in_type")
