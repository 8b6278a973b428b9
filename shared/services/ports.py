"""Ports: what the services need from the outside world, as Protocols.

Adapters in ``shared/adapters`` implement them; tests use in-memory fakes with the same behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.domain.model import EmailAccount, SyncSchedule


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


# --- CRM settings (Dataverse tables that administrators edit) -------------------------------------
class CrmSettings(Protocol):
    def email_accounts(self) -> list[EmailAccount]:
        """Every connected dotdigital account configured in CRM."""

    def sync_schedules(self) -> list[SyncSchedule]:
        """Every schedule row (one per email account × sync type)."""


# --- dotdigital -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EmailPlatformAccount:
    """What dotdigital says about an account: its id and regional API endpoint."""

    account_id: int
    api_endpoint: str


class EmailPlatform(Protocol):
    def describe_account(self, account: EmailAccount) -> EmailPlatformAccount:
        """Reach the account with its API user and report where it lives."""
