"""The Engagement timeline API over HTTP: response times for people with 50, 500 and 5,000 events.

``python -m bench.timeline_api [--sizes 50,500,5000] [--calls 200] [--warmup 10] [--no-walk]``

A local stack (``LocalStack`` with ``http=True``: the emulators, Azurite, and the dev host serving
this repo's ``function_app.py`` on a free loopback port) with one CRM contact per size, readable
by a seeded CRM user. Each contact's partition of the event store holds that many events, written
straight through ``TableEventStore`` (the sync is benchmarked elsewhere): a mix of sends, opens
with their mail client, clicks and page views with URLs, and form responses with answers, spread
over 700 days. With a user token from the Entra emulator, sequential ``GET /api/timeline``
requests fetch each contact's first page as the timeline page does (filters ``all`` and
``emails``; 50 events a page) over one keep-alive HTTP connection, each timed with
``time.perf_counter`` around the whole request: ``--warmup`` untimed rounds, then ``--calls``
timed rounds of one call per size and filter in turn (so a busy spell of a shared machine falls
on all of them alike). Unless ``--no-walk``, the largest person's timeline is then walked page by
page to its end, with each filter.

Prints one JSON object; per size and filter: client-side p50, p95 and max in ms, the dev host's
own time per request (from its request log), the event-store queries per view (the store's
``queries`` counter: the dev host runs in this process), Azurite, Dataverse and Entra requests
per view, response bytes and whether p95 is under the 300 ms target.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from devtools.local_stack import SAMPLE_SETTINGS, LocalStack
from shared import bootstrap
from shared.adapters.storage.event_store import TableEventStore
from shared.domain.engagement import EngagementEvent, EventKind
from tests.e2e.conftest import FAST
from tests.e2e.org import Org

TARGET_MS = 300.0
FILTERS = ("all", "emails")
PAGE_EVENTS = 50  # the service's default page, what the timeline page asks for
SPAN_DAYS = 700  # under ENGAGEMENT_RETENTION_DAYS (730)
USER_OID = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01"  # the Entra emulator's Ada Lovelace
USER_ID = str(uuid.UUID(int=0xADA))  # her systemuserid in the Dataverse seed
COUNTED_CALLS = 5  # calls per size and filter with Azurite's requests counted (not timed)
AZURE_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"
_SERVED = re.compile(r"HTTP GET /api/timeline -> (\d+) in (\d+) ms")

CLIENTS = ("Outlook", "Gmail", "Apple Mail", "iPhone", "Android", "Yahoo! Mail", "Thunderbird")
THEMES = ("Spring news", "Weekend offers", "New in", "Summer sale", "Back in stock",
          "Members' evening", "Gift guide", "Last chance")
PAGES = ("new-in", "summer-sale", "outdoor/tents", "outdoor/boots", "kitchen/knives",
         "kitchen/pans", "gift-cards", "stores/leeds", "stores/bristol", "blog/care-guide")
QUESTIONS = (
    ("How did we do?", ("Great", "Good", "Could be better", "Poor")),
    ("Would you come back?", ("Yes", "No", "Maybe")),
    ("How did you hear about us?", ("A friend", "Our emails", "Social media", "In store")),
    ("Anything else you would like to tell us?",
     ("Delivery was quick and the boots fit well.", "The shop in Leeds was very helpful.",
      "Please stock the blue version again.", "")),
)


# --- figures -------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) with linear interpolation between the two nearest
    ranks (numpy's default, ``statistics.quantiles(method="inclusive")``)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be 0 to 100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(ms: Sequence[float], target_ms: float | None = TARGET_MS) -> dict[str, Any]:
    """p50, p95 and max of ``ms``, rounded to 0.1 ms, and whether p95 is under ``target_ms``."""
    figures: dict[str, Any] = {
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
    }
    if target_ms is not None:
        figures["p95_under_target"] = percentile(ms, 95) < target_ms
    return figures


def per_view(delta: int, views: int) -> float:
    """Requests (or queries) per view, to 0.01."""
    return round(delta / views, 2) if views else 0.0


# --- the data set --------------------------------------------------------------------------------
def email_of(size: int) -> str:
    return f"timeline.{size}@example.com"


def _answers(rng: random.Random) -> list[dict[str, str]]:
    asked = rng.sample(QUESTIONS, rng.randint(2, len(QUESTIONS)))
    return [{"question": question, "answer": rng.choice(choices)} for question, choices in asked]


def _campaign(rng: random.Random, number: int) -> list[tuple[EventKind, int, str, str,
                                                               dict[str, Any]]]:
    """One campaign's events for one person: (kind, seconds after the send, source id, title,
    details). Every campaign is sent; about half are opened, some opens lead to clicks and
    visits on the site, and every twelfth campaign brings a survey response."""
    source, title = str(400_000 + number), f"{THEMES[number % len(THEMES)]} #{number}"
    events: list[tuple[EventKind, int, str, str, dict[str, Any]]] = [
        (EventKind.SEND, 0, source, title, {})]
    if rng.random() < 0.55:
        opened = rng.randint(300, 86_400)
        events.append((EventKind.OPEN, opened, source, title,
                       {"mail_client": rng.choice(CLIENTS)}))
        if rng.random() < 0.2:
            events.append((EventKind.OPEN, opened + rng.randint(3_600, 3 * 86_400), source,
                           title, {"mail_client": rng.choice(CLIENTS)}))
        if rng.random() < 0.35:
            at = opened
            for _ in range(rng.randint(1, 2)):
                at += rng.randint(10, 300)
                url = (f"https://shop.example.com/{rng.choice(PAGES)}?utm_source=dotdigital"
                       f"&utm_medium=email&utm_campaign={source}")
                events.append((EventKind.CLICK, at, source, title, {"url": url}))
                for _ in range(rng.randint(0, 3)):
                    at += rng.randint(15, 240)
                    events.append((EventKind.PAGE_VIEW, at, source, title,
                                   {"url": f"https://shop.example.com/{rng.choice(PAGES)}"}))
    if number % 12 == 0:
        events.append((EventKind.FORM_RESPONSE, rng.randint(3_600, 4 * 86_400), "77",
                       "Customer feedback survey",
                       {"response_id": f"r-{number}", "answers": _answers(rng)}))
    return events


def person_events(email: str, count: int, rng: random.Random, end: datetime) -> list[
        EngagementEvent]:
    """Exactly ``count`` distinct events of one person, campaigns evenly spread over the
    ``SPAN_DAYS`` before ``end`` (the newest kept when the last campaign overshoots)."""
    campaigns: list[list[tuple[EventKind, int, str, str, dict[str, Any]]]] = []
    total = 0
    while total < count + 8:  # a margin for the (rare) repeats dropped below
        campaigns.append(_campaign(rng, len(campaigns) + 1))
        total += len(campaigns[-1])
    gap = timedelta(days=SPAN_DAYS) / len(campaigns)
    start = end - timedelta(days=SPAN_DAYS + 5)
    found: dict[str, EngagementEvent] = {}
    for number, story in enumerate(campaigns):
        sent = start + gap * number
        for kind, after, source, title, details in story:
            event = EngagementEvent(email, kind, sent + timedelta(seconds=after), source, title,
                                    details)
            found.setdefault(event.event_id, event)
    newest = sorted(found.values(), key=lambda event: event.at)[-count:]
    if len(newest) != count:
        raise AssertionError(f"made {len(newest)} events, not {count}")
    return newest


def mix(events: Sequence[EngagementEvent]) -> dict[str, int]:
    counts = dict.fromkeys((kind.value for kind in EventKind), 0)
    for event in events:
        counts[event.kind.value] += 1
    return counts


def build(sizes: Sequence[int]) -> tuple[dict[str, Any], dict[int, str]]:
    """A CRM organisation with one contact per size, all owned by and readable to the user."""
    org = Org(email_accounts=1)
    ids = {size: org.add_crm("contacts", email_of(size)) for size in sizes}
    for row in org.tables["contacts"]:
        row.update({"firstname": "Tim", "lastname": "Line", "_ownerid_value": USER_ID})
    dataset = org.dataset()
    dataset["dataverse"]["users"] = [
        {"oid": USER_OID, "systemuserid": USER_ID,
         "read": {"contact": "organization", "lead": "organization"}}]
    return dataset, ids


def settings_file(directory: Path) -> Path:
    """The sample settings with ``Host.LocalHttpPort`` 0: the dev host picks a free port, so the
    benchmark never collides with ``make run`` (7071)."""
    raw = json.loads(SAMPLE_SETTINGS.read_text(encoding="utf-8"))
    raw.setdefault("Host", {})["LocalHttpPort"] = 0
    path = directory / "local.settings.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


# --- observing the stack -------------------------------------------------------------------------
class _Records(logging.Handler):
    """Keeps the messages of one logger while installed."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def captured(name: str) -> Iterator[_Records]:
    """The INFO messages of logger ``name`` (kept from the console) while the block runs."""
    log = logging.getLogger(name)
    handler = _Records()
    saved = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def server_ms(messages: Sequence[str]) -> list[float]:
    """The dev host's own time of each timeline request, from its request log lines."""
    return [float(match.group(2)) for match in map(_SERVED.search, messages) if match]


def azurite_requests(messages: Sequence[str], endpoint: str) -> int:
    """Requests the Azure SDK sent to ``endpoint``, from its HTTP log (one record a request)."""
    return sum(1 for message in messages if message.startswith(f"Request URL: '{endpoint}"))


def emulator_requests(stack: LocalStack) -> dict[str, int]:
    return {name: int(stack.cluster.servers[name].stats.snapshot()["requests"])
            for name in ("dataverse", "entra")}


def event_store() -> TableEventStore:
    store = bootstrap.services().event_store
    if not isinstance(store, TableEventStore):
        raise SystemExit("the app's event store is not the Table Storage one")
    return store


@dataclass
class Client:
    """GETs of the timeline on one keep-alive connection, as the page's ``fetch`` does."""

    url: str
    bearer: str
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, params: dict[str, str]) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        response = self.session.get(self.url, params=params, timeout=30,
                                    headers={"Authorization": f"Bearer {self.bearer}"})
        body = response.content  # read it all inside the timing
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"the API answered {response.status_code}: {body[:300]!r}")
        return elapsed, response


# --- measuring -----------------------------------------------------------------------------------
@dataclass
class Series:
    """What the timed first-page calls of one person and filter saw."""

    size: int
    record_id: str
    filter: str
    ms: list[float] = field(default_factory=list)
    host_ms: list[float] = field(default_factory=list)
    queries: int = 0
    dataverse: int = 0
    entra: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    response_bytes: int = 0

    @property
    def params(self) -> dict[str, str]:
        return {"entity": "contact", "id": self.record_id, "filter": self.filter}


def timed_round(stack: LocalStack, client: Client, series: Sequence[Series],
                host_log: _Records) -> None:
    """One call of each series, in turn: a busy spell of the shared machine then falls on every
    size and filter alike instead of on whichever block it coincides with."""
    store = event_store()
    for one in series:
        queries, served, logged = store.queries, emulator_requests(stack), len(host_log.messages)
        elapsed, response = client.get(one.params)
        after = emulator_requests(stack)
        one.ms.append(elapsed)
        one.host_ms += server_ms(host_log.messages[logged:])
        one.queries += store.queries - queries
        one.dataverse += after["dataverse"] - served["dataverse"]
        one.entra += after["entra"] - served["entra"]
        one.response_bytes = len(response.content)
        one.answer = response.json()


def check_first_page(one: Series) -> None:
    summary, events = one.answer["summary"], one.answer["events"]
    total = sum(summary[name] for name in ("sends", "opens", "clicks", "pageViews",
                                           "formResponses"))
    if total != one.size or (one.filter == "all" and len(events) != min(one.size, PAGE_EVENTS)):
        raise SystemExit(f"{one.size} events: the summary counts {total}, the page holds "
                         f"{len(events)}")


def first_pages(stack: LocalStack, client: Client, series: Sequence[Series], calls: int,
                warmup: int) -> dict[tuple[int, str], dict[str, Any]]:
    """``calls`` timed rounds (after ``warmup`` untimed ones), then ``COUNTED_CALLS`` of each
    series with Azurite's requests counted (the SDK's HTTP log costs time, so not timed)."""
    for _ in range(warmup):
        for one in series:
            client.get(one.params)
    with captured("devhost") as host_log:
        for _ in range(calls):
            timed_round(stack, client, series, host_log)
    figures: dict[tuple[int, str], dict[str, Any]] = {}
    for one in series:
        check_first_page(one)
        with captured(AZURE_HTTP_LOGGER) as sdk_log:
            for _ in range(COUNTED_CALLS):
                client.get(one.params)
        figures[(one.size, one.filter)] = {
            **latency(one.ms),
            "mean_ms": round(sum(one.ms) / len(one.ms), 1),
            "dev_host_ms": latency(one.host_ms, None) if one.host_ms else None,
            "events_on_page": len(one.answer["events"]),
            "continuation": one.answer["continuation"] is not None,
            "response_bytes": one.response_bytes,
            "event_store_queries_per_view": per_view(one.queries, calls),
            "azurite_requests_per_view": per_view(
                azurite_requests(sdk_log.messages, stack.azurite.table_endpoint),
                COUNTED_CALLS),
            "dataverse_requests_per_view": per_view(one.dataverse, calls),
            "entra_requests_per_view": per_view(one.entra, calls),
        }
    return figures


def walk(client: Client, record_id: str, size: int, chosen: str,
         expected: int) -> dict[str, Any]:
    """Every page of the person's timeline, first to last, each event once and newest first."""
    params = {"entity": "contact", "id": record_id, "filter": chosen}
    store = event_store()
    queries = store.queries
    ms: list[float] = []
    ids: list[str] = []
    times: list[str] = []
    size_bytes = 0
    started = time.perf_counter()
    with captured("devhost") as host_log:
        while True:
            elapsed, response = client.get(params)
            ms.append(elapsed)
            size_bytes += len(response.content)
            answer = response.json()
            ids += [event["id"] for event in answer["events"]]
            times += [event["at"] for event in answer["events"]]
            if not answer["continuation"]:
                break
            params = {**params, "continuation": answer["continuation"]}
    seconds = time.perf_counter() - started
    if len(ids) != expected or len(set(ids)) != expected or times != sorted(times, reverse=True):
        raise SystemExit(f"walking {size} events ({chosen}): {len(ids)} read, "
                         f"{len(set(ids))} distinct, expected {expected}, newest first")
    return {
        "filter": chosen,
        "pages": len(ms),
        "events": len(ids),
        "total_seconds": round(seconds, 3),
        "page": latency(ms, None),
        "page_dev_host": latency(server_ms(host_log.messages), None),
        "event_store_queries_per_page": per_view(store.queries - queries, len(ms)),
        "response_bytes": size_bytes,
    }


def run(sizes: Sequence[int], calls: int, warmup: int, walk_largest: bool,
        seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    dataset, ids = build(sizes)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as work, LocalStack(
        dataset=dataset, settings=dict(FAST), settings_file=settings_file(Path(work)),
        lock_duration_s=5.0, http=True, queues=False,
    ) as stack:
        frontend = stack.host.http
        if frontend is None:
            raise SystemExit("the dev host serves no HTTP route")
        store = event_store()
        made: dict[int, dict[str, int]] = {}
        seeding = time.perf_counter()
        for size in sizes:
            events = person_events(email_of(size), size, rng, end)
            written = store.write(events)
            if written.new != size:
                raise SystemExit(f"{size} events: {written.new} written")
            made[size] = mix(events)
        seed_seconds = time.perf_counter() - seeding
        response = requests.post(f"{stack.cluster.entra_server.base_url}/_emulator/token",
                                 json={"audience": "api://connector", "user": USER_OID},
                                 verify=stack.cluster.ca_bundle, timeout=10)
        response.raise_for_status()
        client = Client(f"{frontend.base_url}/api/timeline",
                        str(response.json()["access_token"]))
        load_before = os.getloadavg()
        timing = time.perf_counter()
        figures = first_pages(stack, client, [Series(size, ids[size], chosen)
                                              for size in sizes for chosen in FILTERS],
                              calls, warmup)
        timed_seconds = time.perf_counter() - timing
        results = {str(size): {"events": made[size],
                               **{chosen: figures[(size, chosen)] for chosen in FILTERS}}
                   for size in sizes}
        walked = None
        if walk_largest:
            most = max(sizes)
            emails = made[most]["send"] + made[most]["open"]
            walked = {"size": most,
                      "walks": [walk(client, ids[most], most, "all", most),
                                walk(client, ids[most], most, "emails", emails)]}
        client.session.close()
    largest = results[str(max(sizes))]
    return {
        "target_ms": TARGET_MS,
        "calls": calls,
        "warmup": warmup,
        "page_events": PAGE_EVENTS,
        "seed_seconds": round(seed_seconds, 1),
        "first_pages_seconds": round(timed_seconds, 1),
        # The machine's load (runnable processes, 1-minute average) around the timed calls,
        # against its cores: figures taken on a busy machine are not comparable.
        "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "sizes": results,
        "walk": walked,
        "all_p95_under_target": all(results[str(size)][chosen]["p95_under_target"]
                                    for size in sizes for chosen in FILTERS),
        "largest": {"size": max(sizes), **{f"{chosen}_p95_ms": largest[chosen]["p95_ms"]
                                            for chosen in FILTERS}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,500,5000", help="events per person")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per size and filter")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls before them")
    parser.add_argument("--no-walk", action="store_true",
                        help="skip the walk through every page of the largest person")
    parser.add_argument("--seed", type=int, default=1, help="of the events' random mix")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes is a comma-separated list of whole numbers")
    if not sizes or min(sizes) < 1 or args.calls < 1 or args.warmup < 0:
        parser.error("sizes at least 1, --calls at least 1, --warmup at least 0")
    print(json.dumps(run(sizes, args.calls, args.warmup, not args.no_walk, args.seed),
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
