"""The commands the sync timer hands to the queue appliers. Pure: standard library only.

A command is what a queue message *means*; how it is written on the wire (JSON, versions,
message ids, application properties) is the message codec's business
(``shared/adapters/servicebus/message_codec.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Batch numbers are written with seven digits in the state store's row keys.
MAX_BATCH_NUMBER = 9_999_999
MAX_ID_LENGTH = 100


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
        for name, value in (("account", self.account), ("run_id", self.run_id)):
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
                raise ValueError(
                    f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters"
                )
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


QueueCommand = ApplyOptInBatch  # becomes a union as suppression and engagement batches arrive
