"""Sending dead letters back to their queue, each batch exactly once.

**The replay id.** A replay is a new message with the dead letter's body, session and
application properties (the batch's identity: schema, run, account, batch number), under the id
``<first id>~replay-<n>``: the batch's first message id (``ReplayOf``; the dead letter's own id
if it was never replayed) and the number of the replay (``ReplayNumber``, one more than the dead
letter's). Why not the original id: duplicate detection remembers every id for its window
(``duplicateDetectionWindow``, PT1H as deployed), and a batch given up on its first delivery is
dead-lettered within seconds of being sent, so a re-send under its own id would be accepted and
silently dropped. Why not a random id: the id is a function of the dead letter, so running the
same replay twice (say after a crash between the send and the removal of the dead letter) sends
the same id twice, and the broker drops the second inside the window; outside it the applier
finds the batch applied and changes nothing, as for any redelivery. A replay that fails again is
dead-lettered under its replay id with its new reason, and is never re-sent by anything but
another ``replay``, whose number is one higher: it is not a duplicate of the first replay, and
nothing loops.

**Order.** For each batch: take back the run's "failed" count (``accounting``), send, and only
once every send succeeded remove the dead letters, so a crash at any point loses nothing: the
dead letter is still there, and replaying it again is dropped as a duplicate. A dead letter whose
batch has a later replay among the dead letters was replayed already and failed again: it is
removed without a send (the later one is what to replay).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ops.dead_letters.model import (
    PARKING_PROPERTIES,
    REPLAY_NUMBER,
    REPLAY_OF,
    DeadLetter,
)
from ops.dead_letters.store import DeadLetterConsole, Reopened
from shared.adapters.servicebus.message_codec import CONTENT_TYPE, OutboundMessage

MAX_ID_LENGTH = 128  # Service Bus's limit on message ids
REPLAY_MARK = "~replay-"


def replay_id(letter: DeadLetter) -> str:
    """The id the replay of ``letter`` is sent under (see the module docstring)."""
    first = letter.first_id
    suffix = f"{REPLAY_MARK}{letter.replay_number + 1}"
    if len(first) + len(suffix) > MAX_ID_LENGTH:
        # Only a message from elsewhere has an id this long; a digest keeps it deterministic.
        first = "sha256-" + hashlib.sha256(first.encode()).hexdigest()[:48]
    return first + suffix


def replay_message(letter: DeadLetter) -> OutboundMessage:
    """What is sent: the batch as it was published, plus where it comes from."""
    properties: dict[str, str | int] = {}
    for name, value in letter.application_properties.items():
        if name in PARKING_PROPERTIES:
            continue  # the reasons of this dead letter are not part of the batch
        properties[name] = value if isinstance(value, str | int) else str(value)
    properties[REPLAY_OF] = letter.first_id
    properties[REPLAY_NUMBER] = letter.replay_number + 1
    return OutboundMessage(replay_id(letter), letter.body, CONTENT_TYPE, properties,
                           session_id=letter.session_id)


@dataclass
class ReplayOutcome:
    letter: DeadLetter
    sent_as: str | None = None
    accounting: str = ""
    superseded_by: str | None = None
    error: str | None = None
    removed: bool = False


@dataclass
class ReplayReport:
    outcomes: list[ReplayOutcome] = field(default_factory=list)
    removal_error: str | None = None  # every send done, then the removal failed

    @property
    def ok(self) -> bool:
        return self.removal_error is None and all(
            o.error is None and o.removed for o in self.outcomes)


def replay(
    console: DeadLetterConsole, chosen: Sequence[DeadLetter], known: Sequence[DeadLetter]
) -> ReplayReport:
    """Replay ``chosen``; ``known`` are the dead letters read to choose them (at least every
    one of their queues), where a later replay of the same batch is looked for."""
    report = ReplayReport()
    sent: dict[tuple[str, str], ReplayOutcome] = {}
    for letter in chosen:
        outcome = ReplayOutcome(letter)
        report.outcomes.append(outcome)
        newer = _later_replay(letter, known)
        if newer is not None:
            outcome.superseded_by = newer.message_id
            continue
        message = replay_message(letter)
        if (letter.queue, message.message_id) in sent:
            # Two copies of one message (the broker's and the app's): one send for both.
            outcome.sent_as = message.message_id
            outcome.accounting = sent[(letter.queue, message.message_id)].accounting
            continue
        try:
            reopened = None if console.accounting is None else console.accounting.reopen(letter)
        except Exception as error:  # noqa: BLE001 - reported per letter; the others go on
            outcome.error = f"{type(error).__name__}: {error}"
            continue
        outcome.accounting = "" if reopened is None else reopened.note
        try:
            console.store.send(letter.queue, message)
        except Exception as error:  # noqa: BLE001
            outcome.error = f"{type(error).__name__}: {error}"
            outcome.accounting = _undone(reopened)
            continue
        outcome.sent_as = message.message_id
        sent[(letter.queue, message.message_id)] = outcome
    done = [o.letter for o in report.outcomes if o.error is None]
    try:
        removed = {_identity(letter) for letter in console.store.remove(done)}
    except Exception as error:  # noqa: BLE001 - sent already: a replay again is dropped
        report.removal_error = f"{type(error).__name__}: {error}"
        removed = set()
    for outcome in report.outcomes:
        outcome.removed = _identity(outcome.letter) in removed
    return report


def _undone(reopened: Reopened | None) -> str:
    """Put the run back as it was when the replay could not be sent, so that it does not stay
    open waiting for a batch nobody sent."""
    if reopened is None or reopened.undo is None:
        return "" if reopened is None else reopened.note
    try:
        return reopened.undo()
    except Exception as error:  # noqa: BLE001 - the dead letter is still there to replay
        return f"the run is left open ({type(error).__name__}): replay again to close it"


def _later_replay(letter: DeadLetter, known: Sequence[DeadLetter]) -> DeadLetter | None:
    for other in known:
        if (other.queue == letter.queue and other.first_id == letter.first_id
                and other.replay_number > letter.replay_number):
            return other
    return None


def _identity(letter: DeadLetter) -> tuple[str, int]:
    return (letter.entity, letter.sequence_number)
