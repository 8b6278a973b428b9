"""The connector's domain values. Pure: standard library only, no I/O.

Choice values are the ones in the Dataverse schema (``infra/dynamics/``): a test checks that the
two agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum


class OptInType(IntEnum):
    """dotdigital opt-in types; the Dataverse choice values are in rank order."""

    UNKNOWN = 100000000
    SINGLE = 100000001
    DOUBLE = 100000002
    VERIFIED_DOUBLE = 100000003

    @classmethod
    def from_dotdigital(cls, name: str) -> OptInType | None:
        """The type for a dotdigital name such as ``VerifiedDouble``; None if unknown."""
        return _OPT_IN_BY_NAME.get(name.strip().casefold()) if isinstance(name, str) else None

    @property
    def dotdigital_name(self) -> str:
        return _OPT_IN_NAMES[self]


_OPT_IN_NAMES = {
    OptInType.UNKNOWN: "Unknown",
    OptInType.SINGLE: "Single",
    OptInType.DOUBLE: "Double",
    OptInType.VERIFIED_DOUBLE: "VerifiedDouble",
}
_OPT_IN_BY_NAME = {name.casefold(): value for value, name in _OPT_IN_NAMES.items()}


class SyncType(IntEnum):
    CONTACT_OPT_IN = 100000000
    SUPPRESSION_LISTS = 100000001
    ENGAGEMENT = 100000002

    @property
    def label(self) -> str:
        return {
            SyncType.CONTACT_OPT_IN: "ContactOptIn",
            SyncType.SUPPRESSION_LISTS: "SuppressionLists",
            SyncType.ENGAGEMENT: "Engagement",
        }[self]


class SyncStatus(IntEnum):
    NONE = 100000000
    ADDED_TO_QUEUE = 100000001
    IN_PROGRESS = 100000002


@dataclass(frozen=True, slots=True)
class EmailAccount:
    """A connected dotdigital account, as an administrator configured it in CRM."""

    row_id: str
    name: str
    dotdigital_account_id: str
    api_user: str
    secret_name: str
    is_default: bool = False
    update_do_not_bulk_email: bool = False
    preferred_locale: str | None = None  # for resubscribe confirmation emails
    resubscribe_return_url: str | None = None


@dataclass(frozen=True, slots=True)
class SyncSchedule:
    """One ``ec_syncschedule`` row: when a sync type runs for an email account."""

    row_id: str
    email_account_id: str
    sync_type: SyncType
    interval_minutes: int = 0  # 0 = manual
    window_start: int | None = None  # minutes after midnight UTC
    window_end: int | None = None
    last_sync: dt.datetime | None = None
    next_sync: dt.datetime | None = None
    status: SyncStatus = SyncStatus.NONE
    sync_now: bool = False
    last_result: str | None = None
    # False: an administrator deactivated the row (statecode 1): that sync does not run for the
    # account, and no new row is made in its place.
    active: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleUpdate:
    """Columns of a schedule row to write; ``None`` leaves a column as it is.

    ``clear_next_sync`` empties Next Sync (a manual schedule has none), which ``None`` cannot say.
    """

    status: SyncStatus | None = None
    last_sync: dt.datetime | None = None
    next_sync: dt.datetime | None = None
    sync_now: bool | None = None
    last_result: str | None = None
    clear_next_sync: bool = False

    def __post_init__(self) -> None:
        if self.clear_next_sync and self.next_sync is not None:
            raise ValueError("a schedule update cannot both set and clear next_sync")
