"""Ports: what the services need from the outside world, as Protocols.

Adapters in ``shared/adapters`` implement them; tests use in-memory fakes with the same behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


# --- Publishing batches ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One queue message; ``message_id`` is deterministic so a re-publish is a duplicate."""

    message_id: str
    body: bytes
    content_type: str = "application/json"
    application_properties: Mapping[str, str | int] = field(default_factory=dict)


class BatchPublisher(Protocol):
    def publish(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        """Send every message or raise; a partial send is repeated safely by message id."""
