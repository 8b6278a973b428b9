"""The timer side of the opt-in sync against in-memory fakes: schedules, runs, the reader."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from shared.adapters.servicebus.message_codec import decode
from shared.config import SyncSettings
from shared.domain.commands import ApplyOptInBatch
from shared.domain.email import match_key
from shared.domain.model import SyncSchedule, SyncStatus, SyncType
from shared.domain.optin import shard_of
from shared.errors import System, TransientError
from shared.services.optin.reader import FIRST_SINCE, OptInReader, optin_sync_key
from shared.services.ports import PageCursor, RunStatus
from shared.services.sync.cycle import CycleSummary, run_sync_cycle
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings, an_account
from tests.fakes.email_platform import FakeEmailPlatform, marker_after
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore

QUEUE = "optin-batches"
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
ACCOUNT = an_account("acc-1")
KEY = optin_sync_key(ACCOUNT.row_id, dry_run=False)
TYPES = ("Unknown", "Single", "Double", "VerifiedDouble")


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    crm: FakeCrmSettings
    platform: FakeEmailPlatform = field(default_factory=FakeEmailPlatform)
    state: Any = field(default_factory=InMemorySyncStateStore)
    publisher: Any = field(default_factory=FakeBatchPublisher)
    clock: FakeMonotonic = field(default_factory=FakeMonotonic)
    settings: SyncSettings = field(default_factory=lambda: SyncSettings(optin_pages_per_flush=2))

    def reader(self, *, crm: Any = None, **overrides: Any) -> OptInReader:
        parts = {"platform": self.platform, "state": self.state, "publisher": self.publisher,
                 **overrides}
        return OptInReader(schedules=ScheduleKeeper(crm or self.crm), queue=QUEUE,
                           settings=self.settings, monotonic=self.clock, **parts)

    def cycle(
        self, now: dt.datetime = T0, run_id: str = "run-1", *, crm: Any = None, **overrides: Any
    ) -> CycleSummary:
        # One CRM for the cycle and the reader's schedule keeper, as bootstrap wires them.
        crm = crm or self.crm
        return run_sync_cycle(crm, self.reader(crm=crm, **overrides), run_id, now)

    def schedule(self) -> SyncSchedule:
        return self.crm.schedule_of(ACCOUNT.row_id, SyncType.CONTACT_OPT_IN)

    def batches(self) -> list[ApplyOptInBatch]:
        commands: list[ApplyOptInBatch] = self.publisher.commands(QUEUE)
        return commands

    def apply_everything(self, now: dt.datetime) -> None:
        """What the appliers do: count each batch once; whoever completes the run closes it."""
        for batch in self.batches():
            ref = batch.ref
            key = optin_sync_key(ref.account, dry_run=ref.dry_run)
            outcome = self.state.mark_batch_applied(key, ref.run_id, ref.batch,
                                                    {"items": len(batch.items)})
            if outcome.completed_now:
                ScheduleKeeper(self.crm).completed(ref.account, SyncType.CONTACT_OPT_IN,
                                                   outcome.run, now)


def a_world(contacts: int = 0, **schedule: Any) -> World:
    row = SyncSchedule(row_id="sched-optin", email_account_id=ACCOUNT.row_id,
                       sync_type=SyncType.CONTACT_OPT_IN, **schedule)
    others = [SyncSchedule(row_id=f"sched-{t.label}", email_account_id=ACCOUNT.row_id,
                           sync_type=t) for t in SyncType if t is not SyncType.CONTACT_OPT_IN]
    world = World(FakeCrmSettings([ACCOUNT], [row, *others]))
    for n in range(contacts):
        world.platform.add(ACCOUNT.row_id, f"Person.{n}@Example.com", TYPES[n % 4],
                           T0 - dt.timedelta(days=1, seconds=-n))
    return world


def statuses(world: World) -> list[SyncStatus]:
    return [update.status for row_id, update in world.crm.writes
            if row_id == "sched-optin" and update.status is not None]


class TestSchedules:
    def test_manual_schedule_does_nothing_until_sync_now_which_is_then_cleared(self) -> None:
        world = a_world(contacts=10)
        assert world.cycle().optin[0].action == "idle"
        assert world.platform.requests == [] and world.publisher.sends == 0
        world.crm.schedules["sched-optin"] = replace(world.schedule(), sync_now=True)

        assert world.cycle(T0 + dt.timedelta(minutes=1)).optin[0].action == "started"
        assert world.schedule().sync_now is False
        assert sum(len(b.items) for b in world.batches()) == 10

    def test_status_goes_to_queue_then_in_progress_then_none_when_the_last_batch_is_applied(
        self,
    ) -> None:
        world = a_world(contacts=2500, sync_now=True)
        world.cycle()
        assert statuses(world) == [SyncStatus.ADDED_TO_QUEUE, SyncStatus.IN_PROGRESS]
        assert world.state.get_run(KEY, "run-1").status is RunStatus.APPLYING

        world.apply_everything(T0 + dt.timedelta(minutes=3))
        assert world.schedule().status is SyncStatus.NONE
        assert world.schedule().last_sync == T0 + dt.timedelta(minutes=3)
        assert world.schedule().last_result == "2,500 read, 0 changed, 0 failed"

    def test_a_run_with_nothing_to_publish_goes_back_to_none_at_once(self) -> None:
        world = a_world(contacts=0, sync_now=True)
        summary = world.cycle()
        assert statuses(world) == [SyncStatus.ADDED_TO_QUEUE, SyncStatus.NONE]
        assert summary.optin[0].progress is not None and summary.optin[0].progress.completed
        assert world.schedule().last_sync == T0
        assert world.schedule().last_result == "0 read, 0 changed, 0 failed"
        assert world.state.get_checkpoint(KEY, PageCursor) is None

    def test_interval_schedule_writes_next_sync_and_waits_for_it(self) -> None:
        world = a_world(contacts=0, interval_minutes=30)
        world.cycle()
        assert world.schedule().next_sync == T0 + dt.timedelta(minutes=30)
        assert world.cycle(T0 + dt.timedelta(minutes=10), "run-2").optin[0].action == "idle"
        assert world.cycle(T0 + dt.timedelta(minutes=30), "run-3").optin[0].action == "started"

    def test_the_window_holds_a_due_schedule_back(self) -> None:
        world = a_world(contacts=0, sync_now=True, window_start=22 * 60, window_end=2 * 60)
        assert world.cycle().optin[0].action == "idle"
        assert world.schedule().sync_now is True
        assert world.cycle(T0.replace(hour=23), "run-2").optin[0].action == "started"

    def test_a_missing_schedule_row_is_created_with_the_manual_default(self) -> None:
        world = World(FakeCrmSettings([ACCOUNT]))
        world.platform.add(ACCOUNT.row_id, "a@example.com", "Single", T0)
        summary = world.cycle()
        # Only the sync types this version runs get rows.
        assert [row.sync_type for row in world.crm.created] == [
            SyncType.CONTACT_OPT_IN, SyncType.SUPPRESSION_LISTS, SyncType.ENGAGEMENT]
        created = world.schedule()
        assert (created.interval_minutes, created.status, created.sync_now) == (
            0, SyncStatus.NONE, False)
        assert world.crm.names[created.row_id] == "Account acc-1 · ContactOptIn"
        assert summary.optin[0].action == "idle" and world.publisher.sends == 0
        world.cycle(run_id="run-2")
        assert len(world.crm.created) == 3  # not created twice

    def test_bad_rows_are_ignored_with_a_log_line(self, caplog: pytest.LogCaptureFixture) -> None:
        world = a_world(contacts=1, sync_now=True)
        good = world.schedule()
        world.crm.schedules["zz-duplicate"] = replace(good, row_id="zz-duplicate")
        world.crm.schedules["stranger"] = replace(good, row_id="stranger",
                                                  email_account_id="nobody")
        with caplog.at_level(logging.WARNING):
            summary = world.cycle()
        assert summary.ok and summary.optin[0].action == "started"
        assert "schedule zz-duplicate ignored" in caplog.text
        assert "schedule stranger ignored" in caplog.text
        assert "@" not in caplog.text  # never an address in the log

    def test_a_row_with_an_impossible_window_is_ignored_not_recreated(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        world = a_world(contacts=1, sync_now=True, window_start=60, window_end=60)
        with caplog.at_level(logging.WARNING):
            summary = world.cycle()
        assert summary.optin[0].action == "skipped"
        assert "window start equals window end" in caplog.text
        assert world.crm.created == [] and world.publisher.sends == 0


class TestReader:
    def test_batches_are_sharded_by_address_and_keep_page_order_within_a_shard(self) -> None:
        world = a_world(contacts=1200, sync_now=True)
        world.platform.add(ACCOUNT.row_id, "not an address", "Single", T0 - dt.timedelta(hours=1))
        world.cycle()
        seen: dict[str, list[str]] = {}
        for message in sorted(world.publisher.messages(QUEUE),
                              key=lambda m: decode(m.body).ref.batch):
            for item in decode(message.body).items:
                key = match_key(item.email)
                shard = shard_of(key, world.settings.optin_shards) if isinstance(key, str) else 0
                assert message.session_id == f"optin-{shard}"
                seen.setdefault(message.session_id, []).append(item.email)
            # The current schema version: an item is an address and a type name, nothing else.
            body = json.loads(message.body)
            assert body["version"] == 2
            assert {tuple(item) for item in body["items"]} == {("email", "opt_in_type")}
        source = [c.email for c in world.platform.contacts[ACCOUNT.row_id]]
        for session, emails in seen.items():
            assert emails == [e for e in source if e in set(emails)], session
        assert sum(map(len, seen.values())) == 1201
        assert [b.ref.batch for b in world.batches()] == list(range(len(world.batches())))

    @pytest.mark.parametrize("contacts", [0, 999, 1000, 5500, 12000])
    def test_dotdigital_requests_per_thousand_contacts_stop_at_the_page_without_a_next_marker(
        self, contacts: int
    ) -> None:
        world = a_world(contacts=contacts, sync_now=True)
        world.cycle()
        assert len(world.platform.requests) == max(1, math.ceil(contacts / 1000))
        assert len(world.platform.requests) <= 1.1 * contacts / 1000 + 1

    def test_first_run_reads_from_1900_and_the_next_overlaps_the_watermark(self) -> None:
        world = a_world(contacts=3, interval_minutes=5)
        world.cycle()
        assert world.platform.requests[0][1] == FIRST_SINCE
        assert world.state.get_watermark(KEY).value == T0
        world.apply_everything(T0)
        world.cycle(T0 + dt.timedelta(minutes=5), "run-2")
        assert world.platform.requests[-1][1] == T0 - dt.timedelta(seconds=300)

    def test_the_time_bound_hands_the_rest_to_the_next_tick(self) -> None:
        world = a_world(contacts=9500, sync_now=True)
        world.settings = SyncSettings(reader_max_s=10, optin_pages_per_flush=4)
        world.platform.on_request = lambda: setattr(world.clock, "now", world.clock.now + 3)
        first = world.cycle().optin[0].progress
        assert first is not None and not first.finished and first.pages == 4
        cursor = world.state.get_checkpoint(KEY, PageCursor).value
        contacts = world.platform.contacts[ACCOUNT.row_id]
        assert (cursor.pages_read, cursor.marker) == (4, marker_after(contacts[3999]))
        assert world.state.get_watermark(KEY) is None  # nothing moves before the end
        assert world.schedule().status is SyncStatus.ADDED_TO_QUEUE

        second = world.cycle(T0 + dt.timedelta(minutes=1), "run-2").optin
        third = world.cycle(T0 + dt.timedelta(minutes=2), "run-3").optin
        assert [second[0].action, third[0].action] == ["resumed", "resumed"]
        assert third[0].progress is not None and third[0].progress.finished
        assert world.state.get_watermark(KEY).value == T0  # the run's `until`
        assert {b.ref.run_id for b in world.batches()} == {"run-1"}
        assert sum(len(b.items) for b in world.batches()) == 9500
        # Each page asked for from where the previous one ended, across the three ticks.
        assert [marker for _, _, marker in world.platform.requests] == [
            None, *(marker_after(contacts[n * 1000 - 1]) for n in range(1, 10))]

    def test_a_dotdigital_failure_keeps_the_cursor_and_the_next_tick_resumes(self) -> None:
        world = a_world(contacts=5000, sync_now=True)
        world.platform.fail_at_request = 4
        world.platform.failure = TransientError(System.DOTDIGITAL, "503", status=503)
        summary = world.cycle()
        assert not summary.ok and summary.optin[0].action == "failed"
        cursor = world.state.get_checkpoint(KEY, PageCursor).value
        after_two_pages = marker_after(world.platform.contacts[ACCOUNT.row_id][1999])
        assert (cursor.pages_read, cursor.marker) == (2, after_two_pages)
        world.platform.fail_at_request = None
        world.cycle(T0 + dt.timedelta(minutes=1), "run-2")
        assert world.platform.requests[4][2] == after_two_pages  # the failed page, asked again
        assert sum(len(b.items) for b in world.batches()) == 5000
        assert world.state.get_watermark(KEY).value == T0

    def test_dry_run_publishes_dry_batches_and_never_moves_the_watermark(self) -> None:
        world = a_world(contacts=1500, sync_now=True)
        world.settings = SyncSettings(dry_run=True)
        world.cycle()
        assert world.batches() and all(b.ref.dry_run for b in world.batches())
        assert world.state.get_watermark(KEY) is None
        dry_key = optin_sync_key(ACCOUNT.row_id, dry_run=True)
        assert world.state.get_run(dry_key, "run-1").dry_run
        assert world.state.get_run(KEY, "run-1") is None
        world.apply_everything(T0)
        assert world.schedule().last_result == "1,500 read, 0 would change, 0 failed"

    def test_a_second_instance_cannot_open_a_second_run(self) -> None:
        world = a_world(contacts=10, sync_now=True)
        reader = world.reader()
        schedule = world.schedule()
        assert reader.start(ACCOUNT, schedule, "run-1", T0) is not None
        assert reader.start(ACCOUNT, schedule, "run-2", T0) is None

    def test_a_reader_whose_cursor_moved_under_it_yields(self) -> None:
        world = a_world(contacts=3000, sync_now=True)
        reader = world.reader()
        opened = reader.start(ACCOUNT, world.schedule(), "run-1", T0)
        assert opened is not None
        cursor, schedule = opened
        world.state.save_checkpoint(KEY, cursor.value, etag=cursor.etag)  # the other instance
        progress = reader.resume(ACCOUNT, schedule, cursor, T0, deadline=1e9)
        assert progress.yielded and not progress.finished

    def test_start_returns_the_cursor_and_the_schedule_as_written_when_a_run_opens(self) -> None:
        world = a_world(contacts=10, sync_now=True, interval_minutes=30)
        opened = world.reader().start(ACCOUNT, world.schedule(), "run-1", T0)
        assert opened is not None
        cursor, schedule = opened
        assert (cursor.value.run_id, cursor.value.marker, cursor.value.pages_read) == (
            "run-1", None, 0)
        assert not cursor.value.read_all
        assert schedule == world.schedule()  # what CRM now holds, without reading it back
        assert (schedule.status, schedule.sync_now) == (SyncStatus.ADDED_TO_QUEUE, False)
        assert schedule.next_sync == T0 + dt.timedelta(minutes=30)

    def test_a_run_resumes_from_its_saved_marker_when_the_next_tick_reads_on(self) -> None:
        world = a_world(contacts=2500, sync_now=True)
        world.settings = SyncSettings(reader_max_s=10, optin_pages_per_flush=1)
        world.platform.on_request = lambda: setattr(world.clock, "now", world.clock.now + 11)
        assert world.cycle().optin[0].progress.pages == 1  # type: ignore[union-attr]
        saved = world.state.get_checkpoint(KEY, PageCursor).value
        contacts = world.platform.contacts[ACCOUNT.row_id]
        assert (saved.marker, saved.pages_read, saved.next_batch) == (
            marker_after(contacts[999]), 1, len(world.batches()))

        world.platform.on_request = lambda: None
        second = world.cycle(T0 + dt.timedelta(minutes=1), "run-2").optin[0]
        assert second.action == "resumed" and second.progress is not None
        assert second.progress.finished and second.progress.pages == 2
        # The resumed read starts at the saved marker, in the run's own window.
        assert world.platform.requests[1] == (ACCOUNT.row_id, FIRST_SINCE, saved.marker)
        emails = [item.email for batch in world.batches() for item in batch.items]
        assert sorted(emails) == sorted(c.email for c in contacts)  # each read once
        assert [b.ref.batch for b in world.batches()] == list(range(len(world.batches())))

    def test_a_contact_changed_while_the_run_pages_is_read_again_and_none_is_skipped(
        self,
    ) -> None:
        world = a_world(contacts=2500, sync_now=True)
        contacts = list(world.platform.contacts[ACCOUNT.row_id])
        changed = contacts[10]

        def edit_after_the_first_page() -> None:
            if len(world.platform.requests) == 2:  # page 1 is read; an administrator edits
                world.platform.modify(ACCOUNT.row_id, changed.email, "VerifiedDouble",
                                      T0 - dt.timedelta(minutes=1))

        world.platform.on_request = edit_after_the_first_page
        world.cycle()
        items = [(item.email, item.opt_in_type) for b in world.batches() for item in b.items]
        # An offset would have skipped the contact that slid into page 1's place; a marker
        # skips nothing and reads the changed contact again, with its new type, at the end.
        assert {email for email, _ in items} == {c.email for c in contacts}
        assert len(items) == 2501
        assert (changed.email, changed.opt_in_type) in items
        assert (changed.email, "VerifiedDouble") in items
        assert len(world.platform.requests) == 3


# --- killed anywhere, run again ------------------------------------------------------------------
class Killed(BaseException):
    """The process died: not an error any handler may catch."""


class DiesAfter:
    """Delegates to ``target`` and dies right after the ``nth`` call of ``method`` took effect."""

    def __init__(self, target: Any, method: str, nth: int,
                 check: Callable[[str, tuple[Any, ...], dict[str, Any]], None]) -> None:
        self._target, self._method, self._left, self._check = target, method, nth, check

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._check(name, args, kwargs)
            result = attribute(*args, **kwargs)
            if name == self._method:
                self._left -= 1
                if self._left == 0:
                    raise Killed(f"after {name}")
            return result

        return call


def _no_check(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    return None


STEPS = [("publisher", "publish"), ("state", "save_checkpoint"),
         ("state", "record_published"), ("state", "start_run"),
         ("state", "advance_watermark"), ("state", "delete_checkpoint"),
         ("crm", "update_schedule")]


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize(("part", "method"), STEPS)
def test_a_reader_killed_after_any_step_converges_on_the_next_tick(
    part: str, method: str, nth: int
) -> None:
    reference = a_world(contacts=4500, sync_now=True)
    reference.cycle()
    expected_ids = {m.message_id for m in reference.publisher.messages(QUEUE)}

    world = a_world(contacts=4500, sync_now=True)

    def watermark_never_ahead(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if name == "advance_watermark":  # everything changed before the new mark is on the queue
            to = kwargs.get("to", args[1] if len(args) > 1 else None)
            published = {item.email for batch in world.batches() for item in batch.items}
            assert {c.email for c in world.platform.contacts[ACCOUNT.row_id]
                    if c.modified < to} <= published

    checked_state = DiesAfter(world.state, method if part == "state" else "", nth,
                              watermark_never_ahead)
    parts: dict[str, Any] = {"state": checked_state}
    if part != "state":
        parts[part] = DiesAfter(getattr(world, part), method, nth, _no_check)
    try:
        world.cycle(**parts)
    except Killed:
        pass
    for tick in range(1, 3):
        world.cycle(T0 + dt.timedelta(minutes=tick), f"run-{tick + 1}",
                    state=DiesAfter(world.state, "", 0, watermark_never_ahead))

    assert {m.message_id for m in world.publisher.messages(QUEUE)} == expected_ids
    assert {b.ref.run_id for b in world.batches()} == {"run-1"}
    assert world.state.get_watermark(KEY).value == T0
    assert world.state.get_checkpoint(KEY, PageCursor) is None
    run = world.state.get_run(KEY, "run-1")
    assert (run.status, run.batches_published) == (RunStatus.APPLYING, len(expected_ids))
    assert world.schedule().status is SyncStatus.IN_PROGRESS
    world.apply_everything(T0 + dt.timedelta(minutes=5))
    assert world.schedule().status is SyncStatus.NONE
