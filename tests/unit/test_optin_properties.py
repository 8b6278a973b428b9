"""Property: however the batches of one or several runs are delivered (interleaved, duplicated,
reordered), Dynamics ends in the same state as applying each batch once, in order."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.servicebus.message_codec import JsonMessageCodec, encode
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.model import OptInType, SyncSchedule, SyncStatus, SyncType
from shared.services.optin.applier import Applier, apply_optin_delivery
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import ReceivedMessage, RunStatus
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings
from tests.fakes.crm_records import FakeCrmRecords
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
LOCALS = ["ann", "bob", "o'neil", "c+d", "e&f"]
NAMES = ["Unknown", "Single", "Double", "VerifiedDouble", "Triple", ""]

# How an address may look in dotdigital or Dynamics: any case, padded; or not an address.
spellings = st.builds(
    lambda local, upper, pad: (" " * pad) + (f"{local}@example.com".upper() if upper
                                            else f"{local}@example.com"),
    st.sampled_from(LOCALS), st.booleans(), st.integers(0, 2),
) | st.sampled_from(["", "not-an-address"])
items = st.lists(st.tuples(spellings, st.sampled_from(NAMES)), max_size=6)
runs = st.lists(st.lists(items, min_size=1, max_size=4), min_size=1, max_size=3)
crm_rows = st.lists(
    st.tuples(st.sampled_from(["contact", "lead", "account"]), spellings,
              st.none() | st.sampled_from(list(OptInType))),
    max_size=10,
)


def _batches(plan: list[list[list[tuple[str, str]]]]) -> list[list[ApplyOptInBatch]]:
    return [
        [
            ApplyOptInBatch(BatchRef(f"account-{account}", f"run-{account}", number),
                            tuple(OptInChange(email, name) for email, name in batch_items))
            for number, batch_items in enumerate(batches)
        ]
        for account, batches in enumerate(plan)
    ]


def _deliver(batch: ApplyOptInBatch, applier: Applier, delivery_count: int) -> None:
    message = encode(batch, session_id="optin-0")
    apply_optin_delivery(
        ReceivedMessage(message.message_id, message.body, dict(message.application_properties),
                        message.session_id, delivery_count),
        applier,
    )


def _world(rows: list[tuple[str, str, OptInType | None]], accounts: int) -> tuple[
    FakeCrmRecords, FakeCrmSettings, InMemorySyncStateStore, Applier
]:
    crm = FakeCrmRecords()
    for table, email, value in rows:
        crm.add(table, email, value)
    schedules = FakeCrmSettings([], [
        SyncSchedule(f"schedule-{a}", f"account-{a}", SyncType.CONTACT_OPT_IN,
                     status=SyncStatus.IN_PROGRESS)
        for a in range(accounts)
    ])
    state = InMemorySyncStateStore(clock=lambda: NOW)
    for a in range(accounts):
        key = optin_sync_key(f"account-{a}", dry_run=False)
        state.start_run(key, f"run-{a}", since=NOW - dt.timedelta(hours=1), until=NOW)
    applier = Applier(
        crm_records=crm, schedules=ScheduleKeeper(schedules), state=state,
        publisher=FakeBatchPublisher(), codec=JsonMessageCodec(), queue="optin-batches",
        max_delivery_count=10, clock=lambda: NOW,
    )
    return crm, schedules, state, applier


def _publish_all(
    state: InMemorySyncStateStore, schedules: FakeCrmSettings,
    batches: list[list[ApplyOptInBatch]],
) -> None:
    """The reader's end of publishing; it completes the run itself if every batch is applied."""
    for account, run in enumerate(batches):
        key = optin_sync_key(f"account-{account}", dry_run=False)
        update = state.record_published(key, f"run-{account}", batches=len(run), done=True)
        if update.completed_now:
            ScheduleKeeper(schedules).completed(f"account-{account}", SyncType.CONTACT_OPT_IN,
                                                update.run, NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=runs, rows=crm_rows, data=st.data())
def test_any_delivery_order_with_duplicates_ends_in_the_in_order_state(
    plan: list[list[list[tuple[str, str]]]], rows: list[tuple[str, str, OptInType | None]],
    data: st.DataObject,
) -> None:
    batches = _batches(plan)
    flat = [batch for run in batches for batch in run]

    expected_crm, expected_schedules, expected_state, expected_applier = _world(rows, len(batches))
    _publish_all(expected_state, expected_schedules, batches)
    for batch in flat:
        _deliver(batch, expected_applier, 1)

    crm, schedules, state, applier = _world(rows, len(batches))
    duplicates = data.draw(st.lists(st.sampled_from(flat), max_size=len(flat)), label="dupes")
    order = data.draw(st.permutations(flat + duplicates), label="order")
    # Publishing may still be going on while early batches are applied.
    published_after = data.draw(st.integers(0, len(order)), label="published after")
    delivered: dict[tuple[str, int], int] = {}
    for index, batch in enumerate(order):
        if index == published_after:
            _publish_all(state, schedules, batches)
        slot = (batch.ref.account, batch.ref.batch)
        delivered[slot] = delivered.get(slot, 0) + 1
        _deliver(batch, applier, delivered[slot])
    if published_after >= len(order):
        _publish_all(state, schedules, batches)

    assert crm.values() == expected_crm.values()
    for account in range(len(batches)):
        key = optin_sync_key(f"account-{account}", dry_run=False)
        run = state.get_run(key, f"run-{account}")
        in_order = expected_state.get_run(key, f"run-{account}")
        assert run is not None and in_order is not None
        assert run.status is RunStatus.COMPLETED
        assert dict(run.counters)["items"] == dict(in_order.counters)["items"]
        # the schedule was returned to None for every account
        assert any(row_id == f"schedule-{account}" and update.status is SyncStatus.NONE
                   for row_id, update in schedules.writes)
