"""The Engagement benchmark's data: a backlog of about N campaign and form events across K
dotdigital accounts, written into the generator's data set (see ``bench.engagement_sync``).

``python -m bench.engagement_seed --file SEED --events N [--seed X] [--as-of DATE] --made OUT``
rewrites the seed file in place and writes what it made to ``OUT``. It runs in its own process and
streams the campaigns into the file one at a time, so its memory stays that of one campaign's
rows however large the backlog (a million events would take about 400 MB as Python objects;
as JSON they are about 62 MB).

What each account gets (its contacts, suppressions and programs stay the generator's; the
people below are not added as contacts, since the Engagement reads never look one up):

- a base of people (about ``SENDS_PER_PERSON`` sends each; ``SHARED_SHARE`` of every later
  account's base are people of the first account, some spelled in other case: one person, one
  event-store partition, written from two accounts' runs);
- monthly campaigns over the year before ``as_of``, each sent to 40 to 80% of the base, until the
  account's share of N is reached (the last campaign is cut short there). Per send: a quarter of
  the recipients open (1 to 4 opens), 18% of openers click (1 or 2 clicks), and every click on a
  campaign with site tracking (three in four) leads to 1 to 4 page views; 1.2% of sends answer
  one of the account's two forms, 90% of them completely (an incomplete response is no event);
- every event time a whole second, strictly increasing per person, campaign and kind, so no two
  events share an id and the store holds exactly the events generated.

Same seed, same ``as_of``, same data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.memory_samples import peak_rss_mb
from shared.domain.model import SyncType

KINDS = ("send", "open", "click", "page_view", "form_response")
SENDS_PER_PERSON = 6.0
SHARED_SHARE = 0.2
AUDIENCE_SHARE = (0.4, 0.8)
OPEN_RATE = 0.25
OPENS = ((1, 2, 3, 4), (60, 25, 10, 5))
CLICK_RATE = 0.18  # of the recipients who opened
CLICKS = ((1, 2), (80, 20))
EXTRA_PAGES = (0, 1, 2, 3)  # page views after the landing page, drawn evenly
TRACKED_EVERY = 4  # every fourth campaign has no site tracking: no page views, no call for them
RESPONSE_RATE = 0.012
COMPLETE_SHARE = 0.9
# Expected events per send with the rates above (the page views of the tracked three in four).
EVENTS_PER_SEND = (1 + OPEN_RATE * 1.6 + OPEN_RATE * CLICK_RATE * 1.2 * (1 + 0.75 * 2.5)
                   + RESPONSE_RATE * COMPLETE_SHARE)
SPAN_DAYS = 365
LAST_SEND_DAYS = 20  # no campaign later than this before as_of: every event is before it
FIRST_ACCOUNT_ID = 1001  # the generator's dotdigital account ids: 1001, 1002, ...
# dotdigital's contact ids are 32-bit: ids as the generator makes them (account id × 10^6 + n).
CONTACT_IDS_PER_ACCOUNT = 1_000_000
SAMPLE_PEOPLE = 25  # people whose expected summaries are written out for the benchmark to check
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "example.co.uk",
           "contoso.example", "fabrikam.example", "northwind.example")
LINKS = ("offers", "new-in", "sale", "stores", "account", "news")
SITE_PAGES = ("pricing", "contact", "blog", "stores", "faq", "delivery", "returns")
MAIL_CLIENTS = ("Apple Mail", "Gmail", "Outlook", "Yahoo Mail", "Samsung Email")
TOPICS = ("Offers", "Product news", "Events", "Stores")
CAMPAIGN_NAMES = ("Spring sale", "New in", "Summer sale", "Back to school", "Autumn edit",
                  "Black Friday", "Christmas gifts", "January sale", "Valentine's", "Easter",
                  "Loyalty news", "Store openings")
_MARKER = re.compile(r'"@@engagement-(campaigns|surveys)-(\d+)@@"')


def default_as_of() -> dt.datetime:
    """Midnight UTC today: the backlog is the year before, inside the store's retention."""
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True, slots=True)
class Person:
    number: int  # the same person in every account it is in
    email: str
    contact_id: int


@dataclass
class Tally:
    """Events made, by kind, and the other things worth reporting."""

    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    campaigns: int = 0
    untracked_campaigns: int = 0
    activity_rows: int = 0
    responses: int = 0
    incomplete_responses: int = 0

    @property
    def events(self) -> int:
        return sum(self.by_kind.values())

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, **asdict(self)}


@dataclass(frozen=True, slots=True)
class EngagementSeed:
    events: int
    accounts: int
    seed: int = 1
    as_of: dt.datetime = field(default_factory=default_as_of)

    def targets(self) -> list[int]:
        """Each account's share of N (the first ones take the remainder)."""
        share, extra = divmod(self.events, self.accounts)
        return [share + (index < extra) for index in range(self.accounts)]

    def people(self) -> list[list[Person]]:
        """Each account's base; later accounts share ``SHARED_SHARE`` of theirs with the first."""
        rng = random.Random(f"engagement-people:{self.seed}")
        bases: list[list[Person]] = []
        number = 0
        for index, target in enumerate(self.targets()):
            size = max(10, round(target / EVENTS_PER_SEND / SENDS_PER_PERSON))
            account_id = FIRST_ACCOUNT_ID + index
            shared = [] if index == 0 else [bases[0][at].number for at in rng.sample(
                range(len(bases[0])), min(len(bases[0]), round(size * SHARED_SHARE)))]
            fresh = range(number + 1, number + 1 + size - len(shared))
            number += len(fresh)
            recase = index % 2 == 1  # one person, another spelling: still one partition
            if size >= CONTACT_IDS_PER_ACCOUNT:
                raise ValueError("too many people for one account's contact ids")
            first_id = account_id * CONTACT_IDS_PER_ACCOUNT + 1
            base = [Person(n, _email(n, recase), first_id + position)
                    for position, n in enumerate(shared)]
            base += [Person(n, _email(n, False), first_id + len(shared) + at)
                     for at, n in enumerate(fresh)]
            bases.append(base)
        return bases

    def build(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Everything in memory (small N: tests): per account ``{"campaigns", "surveys"}``, and
        what was made."""
        generation = Generation(self)
        accounts = []
        for index in range(self.accounts):
            campaigns = list(generation.campaigns(index))
            accounts.append({"campaigns": campaigns, "surveys": generation.forms(index)})
        return accounts, generation.made()

    def rewrite(self, dataset: dict[str, Any], out: TextIO) -> dict[str, Any]:
        """Write ``dataset`` (the generator's) to ``out`` with the benchmark's campaigns and
        forms in its dotdigital accounts, and only the Engagement schedules on Sync Now;
        returns what was made."""
        tables = dataset["dataverse"]["tables"]
        for schedule in tables["ec_syncschedules"]:
            engagement = schedule["ec_synctype"] == SyncType.ENGAGEMENT
            schedule["ec_intervalminutes"] = schedule["ec_intervalminutes"] if engagement else 0
            schedule["ec_syncnow"] = engagement
        accounts = dataset["dotdigital"]["accounts"]
        if len(accounts) != self.accounts:
            raise ValueError(f"the data set has {len(accounts)} dotdigital accounts, not"
                             f" {self.accounts}")
        for index, account in enumerate(accounts):
            account.pop("campaigns", None)
            account.pop("surveys", None)
            account["campaigns"] = f"@@engagement-campaigns-{index}@@"
            account["surveys"] = f"@@engagement-surveys-{index}@@"
        generation = Generation(self)
        text = json.dumps(dataset, ensure_ascii=False, separators=(",", ":"))
        at = 0
        for found in _MARKER.finditer(text):
            out.write(text[at:found.start()])
            at = found.end()
            index = int(found.group(2))
            if found.group(1) == "campaigns":
                out.write("[")
                for number, campaign in enumerate(generation.campaigns(index)):
                    out.write("," if number else "")
                    out.write(json.dumps(campaign, ensure_ascii=False, separators=(",", ":")))
                out.write("]")
            else:
                out.write(json.dumps(generation.forms(index), ensure_ascii=False,
                                     separators=(",", ":")))
        out.write(text[at:])
        return generation.made()


class Generation:
    """One generation of an ``EngagementSeed``: each account's campaigns are made one at a time
    (``campaigns``), its forms meanwhile (``forms``, once the campaigns are consumed)."""

    def __init__(self, seeding: EngagementSeed) -> None:
        self.seeding = seeding
        self.bases = seeding.people()
        everyone = sorted({person.number for base in self.bases for person in base})
        self.chosen = random.Random(f"engagement-sample:{seeding.seed}").sample(
            everyone, min(SAMPLE_PEOPLE, len(everyone)))
        self.sample = {number: dict.fromkeys(KINDS, 0) for number in self.chosen}
        self.tallies = [Tally() for _ in self.bases]
        self._accounts: dict[int, _Account] = {}

    def campaigns(self, index: int) -> Iterator[dict[str, Any]]:
        account = _Account(random.Random(f"engagement:{self.seeding.seed}:{index}"), index,
                           self.bases[index], int(self.seeding.as_of.timestamp()),
                           self.tallies[index], self.sample)
        self._accounts[index] = account
        return account.campaigns(self.seeding.targets()[index])

    def forms(self, index: int) -> list[dict[str, Any]]:
        account = self._accounts.get(index)
        if account is None:
            raise ValueError("an account's forms are made with its campaigns: read those first")
        return account.forms()

    def made(self) -> dict[str, Any]:
        by_kind = dict.fromkeys(KINDS, 0)
        for tally in self.tallies:
            for kind, count in tally.by_kind.items():
                by_kind[kind] += count
        events = sum(by_kind.values())
        seen: dict[int, int] = {}
        for base in self.bases:
            for person in base:
                seen[person.number] = seen.get(person.number, 0) + 1
        return {
            "events": events, "by_kind": by_kind,
            "mix": {kind: round(count / max(events, 1), 4) for kind, count in by_kind.items()},
            "people": len(seen),
            "people_in_several_accounts": sum(1 for n in seen.values() if n > 1),
            "accounts": [tally.as_dict() for tally in self.tallies],
            "as_of": self.seeding.as_of.isoformat(),
            "sample": [{"email": _email(number, False), "counts": self.sample[number]}
                       for number in self.chosen],
        }


def _email(number: int, recased: bool) -> str:
    local = f"person{number}"
    domain = DOMAINS[number % len(DOMAINS)]
    return f"{local.capitalize()}@{domain.upper()}" if recased else f"{local}@{domain}"


class _Account:
    """One account's campaigns and forms."""

    def __init__(self, rng: random.Random, index: int, base: list[Person], as_of: int,
                 tally: Tally, sample: dict[int, dict[str, int]]) -> None:
        self.rng = rng
        self.index = index
        self.account_id = FIRST_ACCOUNT_ID + index
        self.base = base
        self.as_of = as_of
        self.tally = tally
        self.sample = sample
        self.form_ids = (self.account_id * 10 + 7, self.account_id * 10 + 8)
        self.responses: dict[int, list[dict[str, Any]]] = {form: [] for form in self.form_ids}

    def campaigns(self, target: int) -> Iterator[dict[str, Any]]:
        rng, tally = self.rng, self.tally
        per_campaign = len(self.base) * sum(AUDIENCE_SHARE) / 2 * EVENTS_PER_SEND
        expected = max(1, round(target / per_campaign))
        last = self.as_of - LAST_SEND_DAYS * 86_400
        interval = (SPAN_DAYS - LAST_SEND_DAYS) * 86_400 // (expected + 1)
        number = 0
        while tally.events < target:
            campaign_id = self.account_id * 1000 + number + 11
            sent = min(last, last - (expected - number) * interval + rng.randrange(3600))
            sent -= sent % 60
            tracked = number % TRACKED_EVERY != TRACKED_EVERY - 1
            name = f"{CAMPAIGN_NAMES[number % len(CAMPAIGN_NAMES)]} {self.index + 1}"
            size = max(1, round(len(self.base) * rng.uniform(*AUDIENCE_SHARE)))
            rows = []
            for person in rng.sample(self.base, size):
                rows.append(self._send(person, campaign_id, sent, tracked))
                if tally.events >= target:
                    break
            tally.campaigns += 1
            tally.untracked_campaigns += not tracked
            tally.activity_rows += len(rows)
            number += 1
            yield {"id": campaign_id, "name": name, "subject": name,
                   "fromName": f"Brand {self.index + 1}", "status": "Sent",
                   "dateSent": iso(sent), "activities": rows}

    def _count(self, person: Person, kind: str, count: int = 1) -> None:
        self.tally.by_kind[kind] += count
        counts = self.sample.get(person.number)
        if counts is not None:
            counts[kind] += count

    def _send(self, person: Person, campaign_id: int, sent: int, tracked: bool
              ) -> dict[str, Any]:
        rng = self.rng
        row: dict[str, Any] = {"email": person.email, "contactId": person.contact_id}
        self._count(person, "send")
        if rng.random() < OPEN_RATE:
            moments = []
            moment = sent + 30 + int(min(rng.expovariate(1 / 28_800), 5 * 86_400))
            for _ in range(rng.choices(*OPENS)[0]):
                moments.append(moment)
                moment += 1 + int(min(rng.expovariate(1 / 86_400), 3 * 86_400))
            client = rng.choice(MAIL_CLIENTS)
            row["opens"] = [{"date": iso(at), "mailClient": client} for at in moments]
            self._count(person, "open", len(moments))
            if rng.random() < CLICK_RATE:
                self._clicks(row, person, moments, tracked)
        if rng.random() < RESPONSE_RATE:
            self._respond(person, sent)
        return row

    def _clicks(self, row: dict[str, Any], person: Person, opens: list[int], tracked: bool
                ) -> None:
        rng = self.rng
        clicks, views = [], []
        moment = opens[0]
        for number in range(rng.choices(*CLICKS)[0]):
            start = opens[number] if number < len(opens) else moment
            moment = max(start, moment) + 5 + int(min(rng.expovariate(1 / 180), 3600))
            link = rng.choice(LINKS)
            clicks.append({"date": iso(moment), "url": f"https://www.example.com/{link}"})
            if tracked:
                for page in (link, *rng.sample(SITE_PAGES, rng.choice(EXTRA_PAGES))):
                    moment += rng.randint(5, 240)
                    views.append({"date": iso(moment), "url": f"https://www.example.com/{page}"})
        row["clicks"] = clicks
        self._count(person, "click", len(clicks))
        if views:
            row["pageViews"] = views
            self._count(person, "page_view", len(views))

    def _respond(self, person: Person, sent: int) -> None:
        rng = self.rng
        form = rng.choice(self.form_ids)
        responses = self.responses[form]
        started = sent + rng.randint(3600, 72 * 3600)
        response: dict[str, Any] = {"id": len(responses) + 1, "email": person.email,
                                    "dateStarted": iso(started)}
        if form == self.form_ids[0]:
            answers = [{"fieldId": form * 10 + 1, "value": rng.choice(TOPICS)},
                       {"fieldId": form * 10 + 2, "value": rng.choice(("1", "2"))}]
        else:
            answers = [{"fieldId": form * 10 + 1, "value": str(rng.randint(1, 5))},
                       {"fieldId": form * 10 + 2, "value": rng.choice(("", "Quick delivery",
                                                                       "More sizes please"))}]
        response["givenAnswers"] = answers
        self.tally.responses += 1
        if rng.random() < COMPLETE_SHARE:
            response["dateCompleted"] = iso(started + rng.randint(20, 600))
            self._count(person, "form_response")
        else:
            self.tally.incomplete_responses += 1
        responses.append(response)

    def forms(self) -> list[dict[str, Any]]:
        preferences, feedback = self.form_ids
        created = iso(self.as_of - (SPAN_DAYS + 30) * 86_400)
        return [
            {"id": preferences, "name": f"Email preferences {self.index + 1}",
             "dateCreated": created,
             "pages": [{"id": 1, "name": "Your preferences", "fields": [
                 {"id": preferences * 10 + 1, "type": "singleline",
                  "text": "Which topics interest you?", "isRequired": True},
                 {"id": preferences * 10 + 2, "type": "radio",
                  "text": "How often would you like to hear from us?", "isRequired": False,
                  "choices": [{"id": 1, "text": "Weekly"}, {"id": 2, "text": "Monthly"}]},
             ]}],
             "responses": self.responses[preferences]},
            {"id": feedback, "name": f"Your order {self.index + 1}", "dateCreated": created,
             "pages": [{"id": 1, "name": "Feedback", "fields": [
                 {"id": feedback * 10 + 1, "type": "singleline",
                  "text": "How likely are you to recommend us (1-5)?", "isRequired": True},
                 {"id": feedback * 10 + 2, "type": "multiline",
                  "text": "Anything we could do better?", "isRequired": False},
             ]}],
             "responses": self.responses[feedback]},
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engagement_seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", required=True, type=Path, help="the generator's seed file")
    parser.add_argument("--made", required=True, type=Path, help="where to write what was made")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="the backlog ends before this date (default: today, UTC)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    dataset = json.loads(args.file.read_text(encoding="utf-8"))
    as_of = default_as_of() if args.as_of is None else dt.datetime.combine(
        args.as_of, dt.time(), dt.UTC)
    seeding = EngagementSeed(args.events, len(dataset["dotdigital"]["accounts"]), args.seed,
                             as_of)
    temporary = args.file.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        made = seeding.rewrite(dataset, handle)
    temporary.replace(args.file)
    made.update(seed_file_mb=round(args.file.stat().st_size / 2**20, 1),
                seconds=round(time.monotonic() - started, 1),
                peak_rss_mb=round(peak_rss_mb() or 0.0, 1))
    args.made.write_text(json.dumps(made), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
