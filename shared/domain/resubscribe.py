"""What a Request Resubscribe comes to, in words for CRM users (architecture §1.1 C2).

A CRM user ticks Request Resubscribe on an Email Suppression row; the connector asks dotdigital
to resubscribe the address with a confirmation email and writes the outcome to the row's
resubscription status and as a Note on it. Pure: standard library only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.domain.suppression import SuppressionReason, format_date, resubscribed_text

# dotdigital's ApiResubscribeStatuses.
CHALLENGED = "ContactChallenged"
ADDED = "ContactAdded"
CANNOT_BE_UNSUPPRESSED = "ContactCannotBeUnsuppressed"


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """The status and Note for one request; ``challenged_on`` is set when an email went out."""

    kind: str  # challenged | added | refused | pending | invalid
    status: str
    note_subject: str
    challenged_on: dt.datetime | None = None


def still_pending(
    challenged_on: dt.datetime | None, now: dt.datetime, window: dt.timedelta
) -> bool:
    """True while a confirmation email sent on ``challenged_on`` rules out a second one."""
    return challenged_on is not None and now - challenged_on < window


def pending_outcome(
    challenged_on: dt.datetime, account_name: str, window: dt.timedelta
) -> RequestOutcome:
    hours = round(window.total_seconds() / 3600)
    return RequestOutcome(
        "pending",
        f"Confirmation email already sent on {format_date(challenged_on)} by {account_name}; "
        f"dotdigital sends no second one within {hours} hours. Waiting for the contact.",
        "Resubscribe already requested",
        challenged_on,
    )


def invalid_address_outcome() -> RequestOutcome:
    return RequestOutcome("invalid", "Not resubscribed: not a valid email address.",
                          "Resubscribe not possible")


def request_outcome(
    answer: str, *, account_name: str, now: dt.datetime, reason: SuppressionReason | None,
    refusal: str | None = None,
) -> RequestOutcome:
    """The outcome of dotdigital's ``answer`` to a resubscribe call made at ``now``.

    ``refusal`` is dotdigital's message when it refused the request itself (a 4xx answer).
    """
    if refusal is not None:
        return RequestOutcome("refused", f"Not resubscribed: dotdigital refused the request "
                              f"({refusal}).", "Resubscribe refused")
    if answer == CHALLENGED:
        return RequestOutcome(
            "challenged",
            f"Confirmation email sent on {format_date(now)} by {account_name}; waiting for "
            "the contact.",
            "Resubscribe confirmation email sent",
            now,
        )
    if answer == ADDED:
        return RequestOutcome("added", resubscribed_text(now, account_name),
                              f"Resubscribed to {account_name}")
    if answer == CANNOT_BE_UNSUPPRESSED:
        why = (reason.in_plain_words if reason is not None and
               reason is not SuppressionReason.ADDED_IN_CRM else
               "the address is on a global suppression list, its domain is suppressed, or it "
               "came from an ISP complaint")
        return RequestOutcome("refused", f"Not resubscribed: dotdigital cannot resubscribe "
                              f"this address ({why}).", "Resubscribe refused")
    return RequestOutcome("refused", f"Not resubscribed: dotdigital answered {answer!r}.",
                          "Resubscribe refused")
