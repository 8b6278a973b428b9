"""The Engagement sync through its services with in-memory ports: the reader pages the source
into batches, the applier stores them, replays change nothing, a dry run stores nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.servicebus.message_codec import JsonMessageCodec
from shared.config import SyncSettings
from shared.domain.email import match_key
from shared.domain.engagement import EngagementEvent, EventKind, person_key
from shared.domain.model import EmailAccount, ScheduleUpdate, SyncSchedule, SyncStatus, SyncType
from shared.services.engagement.applier import EngagementApplier, apply_engagement_delivery
from shared.services.engagement.reader import EngagementReader, engagement_sync_key
from shared.services.ports import EngagementEventsPage, ReceivedMessage
from shared.services.sync.cycle import run_sync_cycle
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings, an_account
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.event_store import InMemoryEventStore
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore

QUEUE = "engagement-batches"
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@dataclass
class FakeSource:
    """Events in pages of ``page`` with a marker that is the next index."""

    events: list[EngagementEvent] = field(default_factory=list)
    page: int = 3
    calls: list[tuple[dt.datetime, dt.datetime, str | None]] = field(default_factory=list)

    def pages(self, since: dt.datetime, until: dt.datetime, marker: str | None
              ) -> Iterator[EngagementEventsPage]:
        self.calls.append((since, until, marker))
        chosen = [e for e in self.events if since <= e.at <= until]
        start = int(marker or 0)
        while True:
            chunk = chosen[start:start + self.page]
            start += self.page
            more = start < len(chosen)
            yield EngagementEventsPage(chunk, str(start) if more else None)
            if not more:
                return


class Source:
    def __init__(self, fake: FakeSource) -> None:
        self.fake = fake

    def events(self, account: EmailAccount, since: dt.datetime, until: dt.datetime, *,
               marker: str | None = None, page_size: int = 1000
               ) -> Iterator[EngagementEventsPage]:
        return self.fake.pages(since, until, marker)


def event(email: str, kind: EventKind, minutes: int, **details: Any) -> EngagementEvent:
    return EngagementEvent(email, kind, T0 - dt.timedelta(minutes=minutes), "c-1", "Spring sale",
                           details)


@dataclass
class World:
    settings: SyncSettings = field(default_factory=SyncSettings)
    source: FakeSource = field(default_factory=FakeSource)
    store: InMemoryEventStore = field(default_factory=InMemoryEventStore)
    state: Any = field(default_factory=InMemorySyncStateStore)
    publisher: Any = field(default_factory=FakeBatchPublisher)

    def __post_init__(self) -> None:
        self.crm = FakeCrmSettings([an_account("acc-1")], [SyncSchedule(
            "sched-e", "acc-1", SyncType.ENGAGEMENT)])

    def sync(self, now: dt.datetime = T0, run_id: str = "run-1") -> list[Any]:
        self.crm.update_schedule("sched-e", ScheduleUpdate(sync_now=True))
        reader = EngagementReader(
            platform=FakeEmailPlatform(), source=Source(self.source), state=self.state,
            publisher=self.publisher, schedules=ScheduleKeeper(self.crm), queue=QUEUE,
            settings=self.settings)
        summary = run_sync_cycle(self.crm, [reader], run_id, now)
        assert summary.ok, summary
        return list(self.publisher.messages(QUEUE))

    def apply(self, messages: list[Any]) -> list[Any]:
        applier = EngagementApplier(
            store=self.store, schedules=ScheduleKeeper(self.crm), state=self.state,
            publisher=self.publisher, codec=JsonMessageCodec(), queue=QUEUE,
            max_delivery_count=10, clock=lambda: T0)
        return [apply_engagement_delivery(ReceivedMessage(
            m.message_id, m.body, dict(m.application_properties), m.session_id, 1), applier)
            for m in messages]


def key(email: str) -> str:
    found = match_key(email)
    assert isinstance(found, str)
    return person_key(found)


def test_a_run_stores_every_event_once_and_completes_its_schedule() -> None:
    world = World()
    world.source.events = [
        event("ann@example.com", EventKind.SEND, 60),
        event("ann@example.com", EventKind.OPEN, 50, mail_client="Mail"),
        event("Ann@Example.com", EventKind.CLICK, 40, url="https://shop.example/a"),
        event("bob@example.com", EventKind.SEND, 60),
        event("bob@example.com", EventKind.FORM_RESPONSE, 5, response_id="7",
              answers=[{"question": "Size?", "answer": "M"}]),
    ]
    messages = world.sync()
    results = world.apply(messages)
    assert sum(r.counters["written"] for r in results) == 5
    ann = world.store.summary(key("ann@example.com"))
    assert (ann.sends, ann.opens, ann.clicks) == (1, 1, 1)
    assert ann.first_at == T0 - dt.timedelta(minutes=60)
    assert ann.last_at == T0 - dt.timedelta(minutes=40)
    assert world.crm.schedule_of("acc-1", SyncType.ENGAGEMENT).status is SyncStatus.NONE
    # Replayed and duplicated deliveries store nothing new and count nothing twice.
    again = world.apply(messages + messages)
    assert sum(r.counters["written"] for r in again) == 0
    assert world.store.summary(key("ann@example.com")) == ann


def test_the_next_run_reads_from_the_watermark_less_the_overlap() -> None:
    world = World()
    world.source.events = [event("ann@example.com", EventKind.SEND, 60)]
    world.apply(world.sync())
    watermark = world.state.get_watermark(engagement_sync_key("acc-1", dry_run=False))
    assert watermark is not None and watermark.value == T0
    world.source.events.append(event("ann@example.com", EventKind.OPEN, -10))
    later = T0 + dt.timedelta(minutes=30)
    results = world.apply(world.sync(later, "run-2")[1:])
    since = world.source.calls[-1][0]
    assert since == T0 - dt.timedelta(seconds=world.settings.read_overlap_s)
    assert sum(r.counters["written"] for r in results) == 1


def test_a_dry_run_stores_nothing_and_moves_no_watermark() -> None:
    world = World(settings=SyncSettings(dry_run=True))
    world.source.events = [event("ann@example.com", EventKind.SEND, 60)]
    results = world.apply(world.sync())
    assert [r.counters["read_send"] for r in results] == [1]
    assert world.store.entries(key("ann@example.com")) == []
    assert world.state.get_watermark(engagement_sync_key("acc-1", dry_run=False)) is None

