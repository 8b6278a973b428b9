"""Property: however the batches of SuppressionLists runs are delivered (duplicated, reordered,
interleaved across accounts, replayed after a later run), Dynamics ends with the same rows,
flags and Notes as applying each batch once, in order; and each resubscription writes its Notes
exactly once."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.commands import ApplySuppressionBatch, BatchRef, SuppressionEvent
from shared.domain.suppression import SuppressionOrigin, SuppressionReason
from shared.services.suppression.applier import apply_suppression_batch
from tests.fakes.suppression_store import InMemoryCrmSuppressions

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
ADDRESSES = ["ann@example.com", "bob@example.com", "o'neil@example.com", "c+d@example.com"]
ACCOUNTS = ["acc-a", "acc-b"]
REASONS = ["Unsubscribed", "HardBounced", "IspComplained", "Suppressed", "Sneezed"]

minutes = st.integers(0, 50)
# What Dynamics holds before the run: per (address, account) maybe a row, active or not.
prior_row = st.none() | st.tuples(st.booleans(), minutes, st.none() | minutes,
                                  st.sampled_from([SuppressionOrigin.DOTDIGITAL,
                                                   SuppressionOrigin.CRM]))
# One run reads at most one event per address and account: its suppression or resubscription.
event = st.none() | st.tuples(st.sampled_from(REASONS + [""]), minutes)
RUNS = 2  # a later run's events are later: its window starts where the earlier one ended
spelling = st.sampled_from(["{}", "{}".upper(), "  {} "])


def world(priors: dict[tuple[str, str], object], flags: list[bool]) -> InMemoryCrmSuppressions:
    crm = InMemoryCrmSuppressions()
    for (address, account), prior in sorted(priors.items()):
        if prior is None:
            continue
        active, suppressed, resubscribed, origin = prior  # type: ignore[misc]
        crm.add_row(address, account, active=active,
                    reason=SuppressionReason.UNSUBSCRIBED,
                    suppressed_on=T0 + dt.timedelta(minutes=suppressed),
                    resubscribed_on=(None if active or resubscribed is None
                                     else T0 + dt.timedelta(minutes=resubscribed)),
                    origin=origin)
    for index, address in enumerate(ADDRESSES):
        crm.add_record("contact", address, flags[index])
        crm.add_record("lead", address.upper(), not flags[index])
    return crm


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[object, ...]:
    priors = {(a, acc): draw(prior_row) for a in ADDRESSES for acc in ACCOUNTS}
    flags = draw(st.lists(st.booleans(), min_size=len(ADDRESSES), max_size=len(ADDRESSES)))
    options = {acc: draw(st.booleans()) for acc in ACCOUNTS}
    driving = tuple(acc for acc in ACCOUNTS if options[acc])
    runs: list[list[ApplySuppressionBatch]] = []
    for run in range(RUNS):
        batches: list[ApplySuppressionBatch] = []
        for acc in ACCOUNTS:
            events = []
            for address in ADDRESSES:
                chosen = draw(event)
                if chosen is not None:
                    reason, minute = chosen
                    when = T0 + dt.timedelta(minutes=60 * (run + 1) + minute)
                    events.append(SuppressionEvent(draw(spelling).format(address), when, reason))
            size = draw(st.integers(1, 3))
            for number, start in enumerate(range(0, len(events), size)):
                batches.append(ApplySuppressionBatch(
                    BatchRef(acc, f"run-{run}", number), f"Shop {acc}", options[acc],
                    tuple(events[start:start + size]), driving,
                ))
        runs.append(batches)
    in_order = [batch for batches in runs for batch in batches]
    # Each run's batches in any order (with duplicates); runs one after the other, as their
    # schedules allow; then any batch of any run replayed late.
    deliveries: list[ApplySuppressionBatch] = []
    for batches in runs:
        order = draw(st.permutations(batches))
        extra = draw(st.lists(st.sampled_from(batches), max_size=4)) if batches else []
        deliveries += [*order, *extra]
    if in_order:
        deliveries += draw(st.lists(st.sampled_from(in_order), max_size=6))
    return priors, flags, in_order, deliveries


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_delivery_order_ends_like_the_in_order_run(scenario: tuple[object, ...]) -> None:
    priors, flags, batches, deliveries = scenario
    assert isinstance(batches, list) and isinstance(deliveries, list)
    in_order = world(priors, flags)  # type: ignore[arg-type]
    for batch in batches:
        apply_suppression_batch(batch, in_order)
    shuffled = world(priors, flags)  # type: ignore[arg-type]
    for batch in deliveries:
        apply_suppression_batch(batch, shuffled)
    assert shuffled.state() == in_order.state()
    # Exactly one Note per record per resubscription: a row deactivated once, Notes once.
    deactivated = sum(1 for row in in_order.rows.values() if row.resubscription_status)
    notes_per_record: dict[tuple[str, str, str], int] = {}
    for note in shuffled.notes:
        key = (note.table, note.row_id, note.subject)
        notes_per_record[key] = notes_per_record.get(key, 0) + 1
    assert all(count == 1 for count in notes_per_record.values())
    assert (deactivated == 0) <= (not shuffled.notes)
