"""The commands the sync timer hands to the queue appliers. Pure: standard library only.

A command is what a queue message *means*; how it is written on the wire (JSON, versions,
message ids, application properties) is the message codec's business
(``shared/adapters/servicebus/message_codec.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from shared.domain.engagement import EngagementEvent

# Batch numbers are written with seven digits in the state store's row keys; ids are parts of
# its keys, which allow letters, digits and a few separators only.
MAX_BATCH_NUMBER = 9_999_999
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True, slots=True)
class OptInChange:
    """One dotdigital contact's address and opt-in type name, as read (either may be blank or
    unknown: the applier counts and skips those)."""

    email: str
    opt_in_type: str


@dataclass(frozen=True, slots=True)
class BatchRef:
    """Which batch of which run: an email account's run, numbered from 0."""

    account: str
    run_id: str
    batch: int
    dry_run: bool = False

    def __post_init__(self) -> None:
        # The same rules as the sync state's keys, so a message naming a batch the state store
        # could never record is refused before anything is written for it.
        for name, value, pattern, rule in (
            ("account", self.account, ACCOUNT_ID, "100 letters, digits, '.', '_' or '-'"),
            ("run_id", self.run_id, RUN_ID, "64 letters, digits, '.', '_', ':' or '-'"),
        ):
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise ValueError(f"{name} must be a non-empty string of at most {rule}")
        batch = self.batch
        if isinstance(batch, bool) or not isinstance(batch, int):
            raise ValueError(f"batch must be an integer in 0..{MAX_BATCH_NUMBER}")
        if not 0 <= batch <= MAX_BATCH_NUMBER:
            raise ValueError(f"batch must be an integer in 0..{MAX_BATCH_NUMBER}")
        if not isinstance(self.dry_run, bool):
            raise ValueError("dry_run must be true or false")


@dataclass(frozen=True, slots=True)
class ApplyOptInBatch:
    """Raise the opt-in types of the records matching ``items`` (one batch of a run)."""

    ref: BatchRef
    items: tuple[OptInChange, ...]


@dataclass(frozen=True, slots=True)
class UnreadableBatch:
    """A message whose body could not be decoded, as far as its properties still tell:
    which batch it was and how many items it carried (so the run can count them as failed)."""

    ref: BatchRef
    items: int


@dataclass(frozen=True, slots=True)
class SuppressionEvent:
    """One address suppressed (``reason`` is dotdigital's reason name) or resubscribed
    (``reason`` is blank) in dotdigital at ``at`` (UTC, aware)."""

    email: str
    at: dt.datetime
    reason: str = ""

    @property
    def suppressed(self) -> bool:
        return bool(self.reason)


@dataclass(frozen=True, slots=True)
class ApplySuppressionBatch:
    """Bring one account's Email Suppression rows, Do not bulk email and Notes in line with
    ``items`` (one batch of a SuppressionLists run). The account's name and option, and the
    other accounts whose option is on (``dnbe_accounts``: only their suppressions keep Do not
    bulk email set), are as the reader saw them when it published the batch, so the applier
    reads no settings."""

    ref: BatchRef
    account_name: str
    update_do_not_bulk_email: bool
    items: tuple[SuppressionEvent, ...]
    dnbe_accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyEngagementBatch:
    """Store one batch of an Engagement run's events in the event store."""

    ref: BatchRef
    items: tuple[EngagementEvent, ...]


QueueCommand = ApplyOptInBatch | ApplySuppressionBatch | ApplyEngagementBatch
