"""What the dead-letter commands need from a queue back end (the dev host's local queues, or
Service Bus), and from the connection the console opened."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ops.dead_letters.model import DeadLetter
from shared.adapters.servicebus.message_codec import OutboundMessage


class DeadLetterStore(Protocol):
    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """Every dead letter of batch queue ``queue``, from each place one can be (see
        ``model``), read without locking them or counting a delivery."""

    def send(self, queue: str, message: OutboundMessage) -> None:
        """Send ``message`` to ``queue``; one whose id was sent within the queue's duplicate
        detection window is accepted and dropped, as Service Bus does."""

    def remove(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        """Remove ``letters`` from wherever they are; returns those removed (one gone already,
        say removed by an earlier run of the command, is left out)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Reopened:
    """What ``BatchAccounting.reopen`` did, in words; ``undo`` puts the run back as it was (when
    it changed it), for a replay that could not be sent, and says what it did."""

    note: str
    undo: Callable[[], str] | None = None


class BatchAccounting(Protocol):
    def reopen(self, letter: DeadLetter) -> Reopened:
        """Make the run count the batch of ``letter`` again when it is next applied."""


@dataclass
class DeadLetterConsole:
    """What the commands work on: the queues, where their dead letters are, the run state."""

    store: DeadLetterStore
    queues: tuple[str, ...]
    accounting: BatchAccounting | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def all_dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        chosen = self.queues if queue is None else (queue,)
        return [letter for name in chosen for letter in self.store.dead_letters(name)]

    def close(self) -> None:
        self.store.close()
