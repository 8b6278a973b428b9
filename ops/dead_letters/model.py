"""A dead letter as the console sees it, whichever back end holds it.

A batch that failed sits in one of three places, and each back end reads all three the same way:

- ``where`` broker, ``entity`` ``<queue>/$deadletterqueue``: Service Bus dead-lettered it after
  its last allowed delivery;
- ``where`` app, ``entity`` ``<queue>-deadletter``: the app parked it at once, for a failure that
  cannot heal;
- ``where`` broker, ``entity`` ``<queue>-deadletter/$deadletterqueue``: a parked message that
  outlived the queue's time to live, dead-lettered by Service Bus in turn.

``queue`` is always the batch queue the message belongs to (where a replay goes), so the console
speaks of "the opt-in queue's dead letters" wherever they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# Service Bus names the dead-letter sub-queue so (the SDK's ServiceBusSubQueue.DEAD_LETTER).
DLQ_SUFFIX = "/$deadletterqueue"
# What the app adds to a message it parks (``message_codec.dead_letter_message``): not part of
# the batch, so a replay leaves them out.
PARKING_PROPERTIES = ("DeadLetterReason", "DeadLetterErrorDescription", "DeliveryCount",
                      "SessionId")
# What a replay adds (``replay.py``): the first message id of the batch and the replay number.
REPLAY_OF, REPLAY_NUMBER = "ReplayOf", "ReplayNumber"
PropertyValue = str | int | float | bool


class Where(StrEnum):
    BROKER = "broker"
    APP = "app"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message, read without taking its lock.

    ``sequence_number`` and ``entity`` find it again to remove it; ``session_id`` is the session
    it had on ``queue`` (for parked messages, the one the app kept in their properties).
    """

    queue: str
    entity: str
    where: Where
    message_id: str
    sequence_number: int
    body: bytes
    application_properties: Mapping[str, PropertyValue]
    session_id: str | None
    delivery_count: int
    reason: str
    description: str
    enqueued_at: dt.datetime | None

    @property
    def replay_number(self) -> int:
        """How many replays this message is the result of (0: the original)."""
        value = self.application_properties.get(REPLAY_NUMBER)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def first_id(self) -> str:
        """The message id of the batch before any replay: what every replay id derives from."""
        value = self.application_properties.get(REPLAY_OF)
        return value if isinstance(value, str) and value else self.message_id

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.enqueued_at is None else max(now - self.enqueued_at, dt.timedelta())


def parked_fields(
    properties: Mapping[str, PropertyValue], *, delivery_count: int, session_id: str | None
) -> tuple[str, str, int, str | None]:
    """Reason, description, delivery count and session of a message the app parked, from the
    properties it added (the values a broker dead letter carries in its own fields)."""
    count, session = properties.get("DeliveryCount"), properties.get("SessionId")
    return (
        str(properties.get("DeadLetterReason", "")),
        str(properties.get("DeadLetterErrorDescription", "")),
        count if isinstance(count, int) and not isinstance(count, bool) else delivery_count,
        session if isinstance(session, str) and session else session_id,
    )
