"""Request Resubscribe through the whole app: each of dotdigital's answers ends as the row's
resubscription status, a Note on the row and a cleared box (architecture §1.1 C2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devtools.local_stack import LocalStack
from tests.e2e.conftest import (
    confirm_resubscribe,
    dd_contact,
    minute_text,
    notes_on,
    rows,
    stack_for,
    suppress,
    sync,
    when,
)
from tests.e2e.org import Org, add_suppression_schedule

PLAYED = {"challenged@example.com": "Unsubscribed", "added@example.com": "Suppressed",
          "bounced@example.com": "HardBounced"}


@dataclass
class Requests:
    stack: LocalStack
    org: Org
    contacts: dict[str, str]
    after_request: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes_after_request: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    challenge_emails_after_request: int = 0
    after_repeat: dict[str, Any] = field(default_factory=dict)
    challenge_emails_after_repeat: int = 0
    notes_after_repeat: list[dict[str, Any]] = field(default_factory=list)
    after_confirm: dict[str, Any] = field(default_factory=dict)


def tick(stack: LocalStack, account_row_id: str, *addresses: str) -> None:
    """A CRM user ticks Request Resubscribe on the account's rows of ``addresses``."""
    found = rows(stack, account_row_id)
    stack.dataverse.update_rows(
        "ec_emailsuppressions",
        {found[a]["ec_emailsuppressionid"]: {"ec_requestresubscribe": True} for a in addresses},
        primary_key="ec_emailsuppressionid")


@pytest.fixture(scope="module")
def requested() -> Iterator[Requests]:
    org = Org(email_accounts=1)
    add_suppression_schedule(org, 0)
    contacts = {}
    for address in PLAYED:
        org.add_dotdigital(0, address, "Single")
        contacts[address] = org.add_crm("contacts", address)
    with stack_for(org.dataset()) as stack:
        for address, reason in PLAYED.items():
            suppress(stack, 0, address, reason)
        sync(stack)
        found = Requests(stack, org, contacts)
        tick(stack, org.ids[0], *PLAYED)
        sync(stack)
        found.after_request = rows(stack, org.ids[0])
        found.notes_after_request = {
            a: notes_on(stack, row["ec_emailsuppressionid"])
            for a, row in found.after_request.items()}
        found.challenge_emails_after_request = len(
            dd_contact(stack, 0, "challenged@example.com")["challengeEmails"])
        # Ticked again inside dotdigital's resend window.
        tick(stack, org.ids[0], "challenged@example.com")
        sync(stack)
        found.after_repeat = rows(stack, org.ids[0])["challenged@example.com"]
        found.notes_after_repeat = notes_on(stack, found.after_repeat["ec_emailsuppressionid"])
        found.challenge_emails_after_repeat = len(
            dd_contact(stack, 0, "challenged@example.com")["challengeEmails"])
        # The contact clicks the link; the next sync finds the resubscription.
        confirm_resubscribe(stack, 0, "challenged@example.com")
        sync(stack)
        found.after_confirm = rows(stack, org.ids[0])["challenged@example.com"]
        yield found


def test_a_challenged_request_says_the_email_was_sent_and_waits(requested: Requests) -> None:
    row = requested.after_request["challenged@example.com"]
    sent = when(row["ec_resubscriptionrequestedon"])
    status = f"Confirmation email sent on {minute_text(sent)} by Brand 1; waiting for the contact."
    assert row["ec_resubscriptionstatus"] == status
    assert row["ec_requestresubscribe"] is False
    assert row["statecode"] == 0
    notes = requested.notes_after_request["challenged@example.com"]
    assert [(n["subject"], n["notetext"]) for n in notes] == [
        ("Resubscribe confirmation email sent", status)]
    assert requested.challenge_emails_after_request == 1


def test_a_challenged_request_once_confirmed_deactivates_the_row(requested: Requests) -> None:
    row = requested.after_confirm
    dd = dd_contact(requested.stack, 0, "challenged@example.com")
    assert dd["status"] == "Subscribed"
    resubscribed = dd["dataFields"]["LASTSUBSCRIBED"]
    assert (row["statecode"], row["statuscode"]) == (1, 2)
    assert when(row["ec_resubscribedon"]) == when(resubscribed)
    assert row["ec_resubscriptionstatus"] == \
        f"Resubscribed on {minute_text(when(resubscribed))} to Brand 1."
    contact_notes = notes_on(requested.stack, requested.contacts["challenged@example.com"])
    assert [n["notetext"] for n in contact_notes] == [row["ec_resubscriptionstatus"]]


def test_a_request_added_at_once_is_resubscribed_in_the_same_run(requested: Requests) -> None:
    row = requested.after_request["added@example.com"]
    assert (row["statecode"], row["statuscode"]) == (1, 2)
    assert row["ec_requestresubscribe"] is False
    assert row["ec_resubscribedon"] is not None
    date = minute_text(when(row["ec_resubscribedon"]))
    assert row["ec_resubscriptionstatus"] == f"Resubscribed on {date} to Brand 1."
    notes = requested.notes_after_request["added@example.com"]
    assert [n["subject"] for n in notes] == ["Resubscribed to Brand 1"]
    assert notes[0]["notetext"].startswith("Resubscribed on ")
    assert notes[0]["notetext"].endswith(" to Brand 1.")
    assert dd_contact(requested.stack, 0, "added@example.com")["status"] == "Subscribed"
    contact_notes = notes_on(requested.stack, requested.contacts["added@example.com"])
    assert [n["notetext"] for n in contact_notes] == [row["ec_resubscriptionstatus"]]


def test_a_hard_bounce_cannot_be_resubscribed(requested: Requests) -> None:
    row = requested.after_request["bounced@example.com"]
    status = ("Not resubscribed: dotdigital cannot resubscribe this address (the address hard "
              "bounced).")
    assert row["ec_resubscriptionstatus"] == status
    assert row["ec_requestresubscribe"] is False
    assert row["statecode"] == 0 and row["ec_resubscriptionrequestedon"] is None
    notes = requested.notes_after_request["bounced@example.com"]
    assert [(n["subject"], n["notetext"]) for n in notes] == [("Resubscribe refused", status)]
    assert dd_contact(requested.stack, 0, "bounced@example.com")["status"] == "HardBounced"


def test_a_repeated_request_inside_the_resend_window_sends_no_second_email(
    requested: Requests,
) -> None:
    first = requested.after_request["challenged@example.com"]
    row = requested.after_repeat
    sent = minute_text(when(first["ec_resubscriptionrequestedon"]))
    status = (f"Confirmation email already sent on {sent} by Brand 1; dotdigital sends no "
              "second one within 24 hours. Waiting for the contact.")
    assert row["ec_resubscriptionstatus"] == status
    assert row["ec_requestresubscribe"] is False
    assert row["ec_resubscriptionrequestedon"] == first["ec_resubscriptionrequestedon"]
    assert [(n["subject"], n["notetext"]) for n in requested.notes_after_repeat][-1] == (
        "Resubscribe already requested", status)
    assert len(requested.notes_after_repeat) == 2
    assert requested.challenge_emails_after_repeat == 1
