"""The SuppressionLists run through its services, with in-memory ports: the CRM step (pushes and
Request Resubscribe), the read into batches, and the appliers, end to end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from shared.adapters.servicebus.message_codec import JsonMessageCodec
from shared.config import SyncSettings
from shared.domain.model import ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.domain.suppression import SuppressionOrigin, SuppressionReason
from shared.errors import BadRequest, System
from shared.services.ports import ReceivedMessage
from shared.services.suppression.applier import SuppressionApplier, apply_suppression_delivery
from shared.services.suppression.reader import SuppressionReader, suppression_sync_key
from shared.services.sync.cycle import CycleSummary, run_sync_cycle
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings, an_account
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore
from tests.fakes.suppression_store import InMemoryCrmSuppressions

QUEUE = "suppression-batches"
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
ACCOUNT = replace(an_account("acc-1", name="Shop"), update_do_not_bulk_email=True,
                  preferred_locale="de-DE", resubscribe_return_url="https://shop.example/back")


@dataclass
class World:
    clock: list[dt.datetime] = field(default_factory=lambda: [T0])
    platform: FakeEmailPlatform = field(default_factory=FakeEmailPlatform)
    crm: InMemoryCrmSuppressions = field(default_factory=InMemoryCrmSuppressions)
    state: Any = field(default_factory=InMemorySyncStateStore)
    publisher: Any = field(default_factory=FakeBatchPublisher)
    settings: SyncSettings = field(default_factory=SyncSettings)
    applied: int = 0  # messages already handed to the applier

    def __post_init__(self) -> None:
        self.crm_settings = FakeCrmSettings([ACCOUNT], [SyncSchedule(
            "sched-s", ACCOUNT.row_id, SyncType.SUPPRESSION_LISTS, sync_now=True)])
        self.platform.now = lambda: self.clock[0]

    def sync(self, run_id: str = "run-1") -> CycleSummary:
        """One timer tick with Sync Now ticked, then every published batch applied once."""
        self.crm_settings.update_schedule("sched-s", ScheduleUpdate(sync_now=True))
        reader = SuppressionReader(
            platform=self.platform, crm=self.crm, crm_settings=self.crm_settings,
            state=self.state, publisher=self.publisher,
            schedules=ScheduleKeeper(self.crm_settings), queue=QUEUE, settings=self.settings,
            clock=lambda: self.clock[0],
        )
        summary = run_sync_cycle(self.crm_settings, [reader], run_id, self.clock[0])
        applier = SuppressionApplier(
            crm=self.crm, schedules=ScheduleKeeper(self.crm_settings), state=self.state,
            publisher=self.publisher, codec=JsonMessageCodec(), queue=QUEUE,
            max_delivery_count=10, clock=lambda: self.clock[0],
        )
        for message in self.publisher.messages(QUEUE)[self.applied:]:
            apply_suppression_delivery(ReceivedMessage(
                message.message_id, message.body, dict(message.application_properties),
                message.session_id, 1), applier)
        self.applied = len(self.publisher.messages(QUEUE))
        return summary

    def row_of(self, email: str) -> Any:
        (found,) = [r for r in self.crm.rows.values() if r.email_key == email]
        return found


def test_a_run_carries_crm_requests_out_then_brings_dotdigitals_changes_in() -> None:
    world = World()
    p, crm = world.platform, world.crm
    # dotdigital: a new hard bounce; a resubscriber whose row Dynamics still has.
    p.add_suppression("acc-1", "bounce@example.com", "HardBounced", T0 - dt.timedelta(hours=2))
    crm.add_row("back@example.com", "acc-1", active=True, reason=SuppressionReason.UNSUBSCRIBED,
                suppressed_on=T0 - dt.timedelta(days=9), origin=SuppressionOrigin.DOTDIGITAL)
    p.resubscribe_contact("acc-1", "back@example.com", T0 - dt.timedelta(hours=1))
    # CRM users: an address to suppress, and three Request Resubscribe ticks.
    crm.add_row("mine@example.com", "acc-1", active=True, reason=SuppressionReason.ADDED_IN_CRM,
                origin=SuppressionOrigin.CRM)
    p.add_subscriber("acc-1", "mine@example.com", T0 - dt.timedelta(days=99),
                     T0 - dt.timedelta(days=99))
    for email, reason in (("unsub@example.com", "Unsubscribed"), ("me@example.com", "Suppressed"),
                          ("isp@example.com", "IspComplained")):
        p.add_suppression("acc-1", email, reason, T0 - dt.timedelta(days=30))
        crm.add_row(email, "acc-1", active=True, reason=SuppressionReason.from_dotdigital(reason),
                    suppressed_on=T0 - dt.timedelta(days=30),
                    origin=SuppressionOrigin.DOTDIGITAL, request_resubscribe=True)
    records = {e: crm.add_record("contact", e, flag=e != "bounce@example.com")
               for e in ("bounce@example.com", "back@example.com", "me@example.com")}

    summary = world.sync()

    assert summary.ok and summary.suppression[0].action == "started"
    progress = summary.suppression[0].progress
    assert progress is not None and progress.extra == {
        "pushed": 1, "push_not_found": 0, "push_invalid": 0, "requests_added": 1,
        "requests_challenged": 1, "requests_refused": 1}
    # Dynamics → dotdigital: pushed, stamped; the resubscribe calls carry locale and URL.
    assert p.suppress_calls == [("acc-1", ["mine@example.com"])]
    assert world.row_of("mine@example.com").pushed_on == T0
    assert {c[2:] for c in p.resubscribe_calls} == {("de-DE", "https://shop.example/back")}
    # dotdigital → Dynamics: the bounce is a row with its reason and date, and sets the flag.
    bounce = world.row_of("bounce@example.com")
    assert (bounce.active, bounce.reason, bounce.suppressed_on) == (
        True, SuppressionReason.HARD_BOUNCED, T0 - dt.timedelta(hours=2))
    assert crm.records[("contact", records["bounce@example.com"].row_id)].do_not_bulk_email
    # The resubscriber and the address dotdigital resubscribed at once: rows inactive, Notes,
    # flags cleared, all in this one run.
    for email in ("back@example.com", "me@example.com"):
        row = world.row_of(email)
        assert not row.active and row.resubscribed_on is not None
        record = crm.records[("contact", records[email].row_id)]
        assert not record.do_not_bulk_email
        assert [n.text for n in crm.notes if n.row_id == record.row_id] == [
            f"Resubscribed on {row.resubscribed_on:%Y-%m-%d %H:%M} UTC to Shop."]
    unsub, isp = world.row_of("unsub@example.com"), world.row_of("isp@example.com")
    assert unsub.active and not unsub.request_resubscribe and unsub.requested_on == T0
    assert unsub.resubscription_status == (
        "Confirmation email sent on 2026-03-02 12:00 UTC by Shop; waiting for the contact.")
    assert isp.active and not isp.request_resubscribe
    assert isp.resubscription_status == (
        "Not resubscribed: dotdigital cannot resubscribe this address (the contact complained "
        "to their email provider (ISP complaint)).")
    notes_on_rows = {n.row_id: n.subject for n in crm.notes if n.table == "ec_emailsuppression"}
    assert set(notes_on_rows) == {unsub.row_id, isp.row_id, world.row_of("me@example.com").row_id}
    assert world.crm_settings.schedule_of("acc-1", SyncType.SUPPRESSION_LISTS).status is (
        SyncStatus.NONE)

    # The contact confirms; the next run completes the resubscription, and writes no second
    # Note anywhere.
    world.clock[0] = T0 + dt.timedelta(hours=1)
    p.resubscribe_contact("acc-1", "unsub@example.com", T0 + dt.timedelta(minutes=30))
    notes_before = len(crm.notes)
    world.sync("run-2")
    assert not world.row_of("unsub@example.com").active
    assert len(crm.notes) == notes_before  # no record has that address: no record Note
    assert len(p.suppress_calls) == 1  # a pushed row is not pushed again


def test_a_repeated_request_inside_the_resend_window_makes_no_second_call() -> None:
    world = World()
    world.platform.add_suppression("acc-1", "unsub@example.com", "Unsubscribed",
                                   T0 - dt.timedelta(days=3))
    world.crm.add_row("unsub@example.com", "acc-1", active=True, request_resubscribe=True,
                      reason=SuppressionReason.UNSUBSCRIBED, origin=SuppressionOrigin.DOTDIGITAL,
                      suppressed_on=T0 - dt.timedelta(days=3))
    world.sync()
    row = world.row_of("unsub@example.com")
    world.crm.rows[row.row_id] = replace(row, request_resubscribe=True)
    world.clock[0] = T0 + dt.timedelta(hours=2)
    world.sync("run-2")
    assert len(world.platform.resubscribe_calls) == 1
    assert len(world.platform.challenge_emails) == 1
    again = world.row_of("unsub@example.com")
    assert not again.request_resubscribe and again.resubscription_status == (
        "Confirmation email already sent on 2026-03-02 12:00 UTC by Shop; dotdigital sends no "
        "second one within 24 hours. Waiting for the contact.")


def test_an_unknown_address_is_reported_on_its_row_and_never_pushed_again() -> None:
    world = World()
    world.crm.add_row("ghost@example.com", "acc-1", active=True, origin=None)
    world.crm.add_row("not an address", "acc-1", active=True, origin=SuppressionOrigin.CRM)
    world.sync()
    ghost, bad = world.row_of("ghost@example.com"), world.crm.rows["row-2"]
    assert ghost.pushed_on == T0 and ghost.resubscription_status == (
        "Not suppressed in dotdigital: Shop has no contact with this address "
        "(2026-03-02 12:00 UTC).")
    assert bad.pushed_on == T0 and "not a valid email address" in str(bad.resubscription_status)
    assert world.platform.suppress_calls == [("acc-1", ["ghost@example.com"])]
    world.clock[0] = T0 + dt.timedelta(minutes=5)
    world.sync("run-2")
    assert len(world.platform.suppress_calls) == 1


def test_an_address_dotdigital_refuses_is_reported_and_holds_no_other_back() -> None:
    world = World()
    for email in ("a@example.com", "odd@example.com", "b@example.com"):
        world.platform.add_subscriber("acc-1", email, None, T0 - dt.timedelta(days=9))
        world.crm.add_row(email, "acc-1", active=True, origin=SuppressionOrigin.CRM)
    world.platform.suppress_refused.add("odd@example.com")
    summary = world.sync()
    assert summary.ok
    odd = world.row_of("odd@example.com")
    assert odd.pushed_on == T0 and odd.resubscription_status == (
        "Not suppressed in dotdigital: dotdigital refused the address (Email is not a valid "
        "email address. ERROR_PARAMETER_INVALID) (2026-03-02 12:00 UTC).")
    for email in ("a@example.com", "b@example.com"):
        assert world.row_of(email).pushed_on == T0
        assert world.row_of(email).resubscription_status is None
        assert world.platform.addresses["acc-1"][email].status == "Suppressed"
    calls = len(world.platform.suppress_calls)
    world.clock[0] = T0 + dt.timedelta(minutes=5)
    world.sync("run-2")
    assert len(world.platform.suppress_calls) == calls  # nothing is pushed again


def test_a_refused_request_says_why_on_the_row() -> None:
    world = World()
    world.crm.add_row("odd@example.com", "acc-1", active=True, request_resubscribe=True,
                      origin=SuppressionOrigin.DOTDIGITAL)
    world.platform.resubscribe_answers["odd@example.com"] = BadRequest(
        System.DOTDIGITAL, "The request is invalid.", status=400, operation="resubscribe")
    world.sync()
    row = world.row_of("odd@example.com")
    assert not row.request_resubscribe
    assert row.resubscription_status == (
        "Not resubscribed: dotdigital refused the request (The request is invalid.).")


def test_a_dry_run_reports_and_writes_nothing() -> None:
    world = World(settings=SyncSettings(dry_run=True))
    world.platform.add_suppression("acc-1", "bounce@example.com", "HardBounced", T0)
    world.crm.add_row("mine@example.com", "acc-1", active=True, origin=SuppressionOrigin.CRM)
    world.crm.add_row("unsub@example.com", "acc-1", active=True, request_resubscribe=True,
                      origin=SuppressionOrigin.DOTDIGITAL)
    world.crm.add_record("contact", "bounce@example.com")
    before = world.crm.state()
    summary = world.sync()
    assert world.crm.state() == before and world.crm.writes == 0
    assert world.platform.suppress_calls == [] and world.platform.resubscribe_calls == []
    progress = summary.suppression[0].progress
    assert progress is not None and progress.extra["pushed"] == 1
    assert progress.extra["requests_would_request"] == 1
    commands = world.publisher.commands(QUEUE)
    assert commands and all(c.ref.dry_run for c in commands)
    assert world.state.get_watermark(suppression_sync_key("acc-1", dry_run=False)) is None
