"""The suppression rules (shared/domain/suppression.py): latest event wins by date, a Note only
with a row's deactivation, Do not bulk email follows the rows of the accounts that drive it."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.domain.commands import SuppressionEvent
from shared.domain.resubscribe import request_outcome, still_pending
from shared.domain.suppression import (
    SUPPRESSION_COUNTERS,
    AccountView,
    FlagRecord,
    SuppressionOrigin,
    SuppressionReason,
    SuppressionRow,
    latest_per_address,
    own_row,
    plan_batch,
)

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
A = AccountView("acc-a", "Shop A", update_do_not_bulk_email=True,
                dnbe_accounts=frozenset({"acc-a", "acc-b"}))


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def row(key: str = "ann@example.com", account: str = "acc-a", *, active: bool = True,
        suppressed: int | None = 0, resubscribed: int | None = None,
        origin: SuppressionOrigin | None = SuppressionOrigin.DOTDIGITAL,
        reason: SuppressionReason | None = SuppressionReason.UNSUBSCRIBED,
        row_id: str = "r1") -> SuppressionRow:
    return SuppressionRow(
        row_id, key, key, account, active, reason,
        None if suppressed is None else at(suppressed),
        None if resubscribed is None else at(resubscribed), origin,
    )


def contact(flag: bool, key: str = "ann@example.com", row_id: str = "c1") -> FlagRecord:
    return FlagRecord("contact", row_id, key, flag)


def test_a_new_suppression_creates_one_row_with_reason_and_date_and_sets_the_flag() -> None:
    events = [SuppressionEvent(" Ann@Example.com ", at(5), "HardBounced")]
    plan, counters = plan_batch(events, A, [], [contact(False), contact(True, row_id="c2")])
    assert [(c.email, c.reason, c.suppressed_on) for c in plan.create] == [
        ("Ann@Example.com", SuppressionReason.HARD_BOUNCED, at(5))]
    assert [(f.row_id, f.do_not_bulk_email) for f in plan.flags] == [("c1", True)]
    assert counters["rows_created"] == 1 and counters["dnbe_set"] == 1


def test_the_flag_is_left_alone_when_the_accounts_option_is_off() -> None:
    off = AccountView("acc-a", "Shop A", update_do_not_bulk_email=False)
    events = [SuppressionEvent("ann@example.com", at(5), "Unsubscribed")]
    plan, _ = plan_batch(events, off, [], [contact(False)])
    assert plan.create and not plan.flags


def test_a_resubscription_deactivates_the_row_with_one_note_per_record() -> None:
    records = [contact(True), FlagRecord("lead", "l1", "ann@example.com", True)]
    events = [SuppressionEvent("ann@example.com", at(10))]
    plan, counters = plan_batch(events, A, [row()], records)
    (change,) = plan.change
    assert not change.active and change.resubscribed_on == at(10)
    assert change.resubscription_status == "Resubscribed on 2026-03-01 09:10 UTC to Shop A."
    assert [(n.table, n.row_id) for n in plan.notes] == [("contact", "c1"), ("lead", "l1")]
    assert all("Resubscribed on 2026-03-01 09:10 UTC to Shop A." == n.text for n in plan.notes)
    assert [(f.row_id, f.do_not_bulk_email) for f in plan.flags] == [("c1", False),
                                                                     ("l1", False)]
    assert counters["rows_removed"] == 1 and counters["notes"] == 2
    assert counters["dnbe_cleared"] == 2


def test_the_flag_stays_while_another_driving_account_still_suppresses() -> None:
    rows = [row(), row(account="acc-b", row_id="r2")]
    plan, _ = plan_batch([SuppressionEvent("ann@example.com", at(10))], A, rows,
                         [contact(True)])
    assert plan.change and plan.notes and not plan.flags


def test_an_account_that_does_not_drive_the_flag_cannot_hold_it() -> None:
    rows = [row(), row(account="acc-c", row_id="r2")]
    plan, _ = plan_batch([SuppressionEvent("ann@example.com", at(10))], A, rows,
                         [contact(True)])
    assert [(f.row_id, f.do_not_bulk_email) for f in plan.flags] == [("c1", False)]


def test_replaying_a_resubscription_writes_nothing() -> None:
    done = row(active=False, resubscribed=10)
    plan, counters = plan_batch([SuppressionEvent("ann@example.com", at(10))], A, [done],
                                [contact(False)])
    assert not plan and counters["notes"] == 0


def test_an_older_suppression_arriving_late_does_not_undo_a_resubscription() -> None:
    done = row(active=False, suppressed=0, resubscribed=10)
    plan, _ = plan_batch([SuppressionEvent("ann@example.com", at(5), "Unsubscribed")], A,
                         [done], [contact(False)])
    assert not plan


def test_a_suppression_after_the_resubscription_reactivates_the_row() -> None:
    done = row(active=False, suppressed=0, resubscribed=10)
    plan, counters = plan_batch([SuppressionEvent("ann@example.com", at(20), "HardBounced")],
                                A, [done], [contact(False)])
    (change,) = plan.change
    assert change.active and change.reason is SuppressionReason.HARD_BOUNCED
    assert change.suppressed_on == at(20) and counters["dnbe_set"] == 1


def test_a_resubscription_older_than_the_rows_suppression_changes_nothing() -> None:
    plan, _ = plan_batch([SuppressionEvent("ann@example.com", at(5))], A, [row(suppressed=10)],
                         [contact(True)])
    assert not plan


def test_a_resubscription_without_a_row_is_counted_and_writes_nothing() -> None:
    plan, counters = plan_batch([SuppressionEvent("ann@example.com", at(5))], A, [],
                                [contact(True)])
    assert not plan and counters["resubscribed_without_row"] == 1


def test_a_users_row_keeps_its_reason_when_dotdigital_echoes_the_push() -> None:
    mine = row(origin=SuppressionOrigin.CRM, reason=SuppressionReason.ADDED_IN_CRM)
    plan, _ = plan_batch([SuppressionEvent("ann@example.com", at(3), "Suppressed")], A, [mine],
                         [contact(True)])
    assert not plan


def test_rows_of_other_accounts_and_other_addresses_are_never_changed() -> None:
    rows = [row(account="acc-b"), row(key="bob@example.com", row_id="r3")]
    plan, _ = plan_batch([SuppressionEvent("ann@example.com", at(5), "Unsubscribed")], A, rows,
                         [])
    assert len(plan.create) == 1 and not plan.change


def test_invalid_addresses_and_unknown_reasons_are_counted_not_fatal() -> None:
    events = [SuppressionEvent("", at(1), "Unsubscribed"),
              SuppressionEvent("ann@example.com", at(1), "Sneezed")]
    plan, counters = plan_batch(events, A, [], [])
    assert not plan
    assert (counters["items"], counters["invalid_email"], counters["unknown_reason"]) == (2, 1, 1)
    assert set(counters) == set(SUPPRESSION_COUNTERS)


def test_an_addresses_latest_event_wins_and_a_tie_goes_to_the_suppression() -> None:
    counters = dict.fromkeys(SUPPRESSION_COUNTERS, 0)
    latest = latest_per_address([
        SuppressionEvent("ann@example.com", at(5)),
        SuppressionEvent("ANN@example.com", at(5), "Unsubscribed"),
        SuppressionEvent("ann@example.com", at(1)),
    ], counters)
    assert latest["ann@example.com"][0].reason == "Unsubscribed"


def test_of_several_rows_the_active_most_recent_one_is_kept() -> None:
    rows = [row(row_id="r1", active=False, resubscribed=30), row(row_id="r2", suppressed=5),
            row(row_id="r3", suppressed=9)]
    chosen = own_row(rows)
    assert chosen is not None and chosen.row_id == "r3"


@pytest.mark.parametrize(("answer", "kind", "text"), [
    ("ContactChallenged", "challenged",
     "Confirmation email sent on 2026-03-01 09:00 UTC by Shop A; waiting for the contact."),
    ("ContactAdded", "added", "Resubscribed on 2026-03-01 09:00 UTC to Shop A."),
    ("ContactCannotBeUnsuppressed", "refused",
     "Not resubscribed: dotdigital cannot resubscribe this address (the address hard "
     "bounced)."),
    ("NotAvailableInThisVersion", "refused",
     "Not resubscribed: dotdigital answered 'NotAvailableInThisVersion'."),
])
def test_each_resubscribe_answer_has_its_status(answer: str, kind: str, text: str) -> None:
    outcome = request_outcome(answer, account_name="Shop A", now=T0,
                              reason=SuppressionReason.HARD_BOUNCED)
    assert (outcome.kind, outcome.status) == (kind, text)
    assert (outcome.challenged_on is not None) == (kind == "challenged")


def test_a_confirmation_is_pending_only_inside_the_resend_window() -> None:
    window = dt.timedelta(hours=24)
    assert still_pending(T0, at(60), window)
    assert not still_pending(T0, T0 + window, window)
    assert not still_pending(None, T0, window)


def test_dates_are_kept_to_the_second_as_dataverse_stores_them() -> None:
    events = [SuppressionEvent("ann@example.com", at(5) + dt.timedelta(milliseconds=700),
                               "Unsubscribed")]
    plan, _ = plan_batch(events, A, [], [])
    assert plan.create[0].suppressed_on == at(5)
    # The row as Dataverse then holds it: the same event replayed changes nothing.
    replayed, counters = plan_batch(events, A, [row(suppressed=5)], [contact(True)])
    assert not replayed and counters["rows_updated"] == 0
