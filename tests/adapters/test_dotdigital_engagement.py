"""DotdigitalEngagement against the dotdigital emulator: every kind with its details and date,
only events in the window, paging, resumable markers, rows reordered mid-read, and the number of
requests per 1,000 events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dotdigital import engagement_marker as markers
from shared.adapters.dotdigital.engagement import DotdigitalEngagement
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.http.policy import RetryPolicy
from shared.config import DotdigitalSettings, HttpSettings
from shared.domain.engagement import EngagementEvent, EventKind
from shared.domain.model import EmailAccount
from shared.services.ports import EngagementEventsPage as EngagementPage
from tests.adapters.conftest import admin

API_USER = "apiuser-engagement@apiconnector.com"
PASSWORD = "Passw0rd!local"
ACCOUNT_ID = 2003
ACCOUNT = EmailAccount(row_id="acc-e", name="Engagement test", dotdigital_account_id="2003",
                       api_user=API_USER, secret_name="DD_SECRET_TEST")
SINCE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def at(day: int, hour: int = 0, minute: int = 0, ms: int = 0, month: int = 6) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, 0, ms * 1000, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def seed(cluster: EmulatorCluster, campaigns: list[dict[str, Any]],
         surveys: list[dict[str, Any]] | None = None) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [{
        "id": ACCOUNT_ID, "apiUser": API_USER, "password": PASSWORD, "region": "r2",
        "name": "Engagement test", "campaigns": campaigns, "surveys": surveys or [],
    }]})


def row(email: str, sent: dt.datetime, *, contact: int = 0,
        opens: Sequence[dt.datetime] = (), clicks: Sequence[tuple[dt.datetime, str]] = (),
        views: Sequence[tuple[dt.datetime, str]] = (), opens_client: str = ""
        ) -> dict[str, Any]:
    """An activity row; ``contact``: its contact id (0: none, as for an address dotdigital
    holds no contact for)."""
    return {"email": email, "dateSent": iso(sent), **({"contactId": contact} if contact else {}),
            "opens": [{"date": iso(d), "mailClient": opens_client} for d in opens],
            "clicks": [{"date": iso(d), "url": url} for d, url in clicks],
            "pageViews": [{"date": iso(d), "url": url} for d, url in views]}


def survey(survey_id: int, name: str, responses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": survey_id, "name": name, "dateCreated": "2026-01-01T00:00:00Z",
            "pages": [{"id": 1, "name": None, "fields": [
                {"id": 15, "type": "email", "text": "Email address"},
                {"id": 16, "type": "radio", "text": "Will you come?",
                 "choices": [{"id": 1, "text": "Yes"}, {"id": 2, "text": "No"}]},
                {"id": 17, "type": "singleline", "text": "Name",
                 "subFields": [{"id": 1, "text": "First"}, {"id": 2, "text": "Last"}]},
            ]}], "responses": responses}


def response(email: str, started: dt.datetime, completed: dt.datetime | None,
             answers: list[tuple[int, int | None, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {"email": email, "dateStarted": iso(started), "givenAnswers": [
        {"fieldId": field, "subFieldId": sub, "value": value} for field, sub, value in answers]}
    if completed is not None:
        item["dateCompleted"] = iso(completed)
    return item


@pytest.fixture
def platform(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> DotdigitalEmailPlatform:
    info_url = cluster.describe()["dotdigital"]["account_info_url"]
    return DotdigitalEmailPlatform(DotdigitalSettings(info_url), http,
                                   {"DD_SECRET_TEST": PASSWORD}, policy=fast_policy)


@pytest.fixture
def engagement(platform: DotdigitalEmailPlatform) -> DotdigitalEngagement:
    return DotdigitalEngagement(platform)


def read(engagement: DotdigitalEngagement, **kwargs: Any) -> list[EngagementPage]:
    return list(engagement.events(ACCOUNT, SINCE, UNTIL, **kwargs))


def events(pages: list[EngagementPage]) -> list[EngagementEvent]:
    return [event for page in pages for event in page.events]


def event(email: str, kind: str, moment: dt.datetime, source: int, title: str,
          **details: Any) -> EngagementEvent:
    return EngagementEvent(email, EventKind(kind), moment, str(source), title, details)


# --- reading ------------------------------------------------------------------------------------
def test_every_kind_is_read_with_its_details_and_date_and_only_inside_the_window(
    cluster: EmulatorCluster, engagement: DotdigitalEngagement
) -> None:
    seed(cluster, [
        {"id": 10, "name": "Spring sale", "dateSent": iso(at(2, 9)), "activities": [
            row("ann@example.com", at(2, 9), opens=[at(2, 10), at(1, 9, month=7)],
                opens_client="Outlook",
                clicks=[(at(2, 11), "https://shop.example/a")],
                views=[(at(2, 12), "https://shop.example/p")]),
            row("bob@example.com", at(3, 9), opens=[at(3, 10)]),
        ]},
        {"id": 11, "name": "Old news", "activities": [
            # Sent before the window; one click inside it, one after it.
            row("cy@example.com", at(20, month=5), clicks=[
                (at(25, month=5), "https://old.example/x"), (at(4, 8), "https://old.example/y"),
                (at(2, 0, month=7), "https://old.example/z")]),
        ]},
        {"id": 12, "name": "Long ago", "activities": [
            row("dee@example.com", at(1, month=5), opens=[at(2, month=5)])]},
    ], [
        survey(7, "Event registration", [
            response("ann@example.com", at(5, 9), at(5, 9, 3),
                     [(15, None, "ann@example.com"), (16, None, 1), (17, 1, "Ann"),
                      (17, 2, "Lee")]),
            response("bob@example.com", at(5, 9), None, [(15, None, "bob@example.com")]),
            response("cy@example.com", at(20, month=5), at(21, month=5), [(16, None, 2)]),
            response("dee@example.com", at(30, 23), at(1, 0, 1, month=7), [(16, None, 2)]),
            response("not an address", at(6), at(6, 1), []),  # matches nobody: counted
        ]),
        survey(8, "Quiet form", [response("eve@example.com", at(1, month=5),
                                          at(1, month=5), [])]),
    ])

    pages = read(engagement)

    spring, old, form = "Spring sale", "Old news", "Event registration"
    assert sorted(events(pages), key=lambda e: (e.source_id, e.kind, e.at)) == [
        event("ann@example.com", "click", at(2, 11), 10, spring, url="https://shop.example/a"),
        event("ann@example.com", "open", at(2, 10), 10, spring, mail_client="Outlook"),
        event("bob@example.com", "open", at(3, 10), 10, spring),
        event("ann@example.com", "page_view", at(2, 12), 10, spring,
              url="https://shop.example/p"),
        event("ann@example.com", "send", at(2, 9), 10, spring),
        event("bob@example.com", "send", at(3, 9), 10, spring),
        event("cy@example.com", "click", at(4, 8), 11, old, url="https://old.example/y"),
        event("ann@example.com", "form_response", at(5, 9, 3), 7, form, response_id="1",
              answers=[{"question": "Email address", "answer": "ann@example.com"},
                       {"question": "Will you come?", "answer": "Yes"},
                       {"question": "Name: First", "answer": "Ann"},
                       {"question": "Name: Last", "answer": "Lee"}]),
    ]
    assert sum(page.unmatched for page in pages) == 1
    assert all(e.at.tzinfo is dt.UTC for e in events(pages))
    assert [page.next_marker is None for page in pages] == [False] * (len(pages) - 1) + [True]


def test_nothing_to_read_is_one_empty_last_page(
    cluster: EmulatorCluster, engagement: DotdigitalEngagement
) -> None:
    seed(cluster, [])
    assert read(engagement) == [EngagementPage(events=[], next_marker=None)]


def many(cluster: EmulatorCluster) -> None:
    """Two campaigns of 13 and 4 rows with opens, clicks and page views in and out of the
    window, and a form with 7 responses."""
    seed(cluster, [
        {"id": 30, "name": "Big", "activities": [
            row(f"b{n:02d}@example.com", at(2, n), contact=100 + n, opens=[at(3, n), at(4, n)],
                clicks=[(at(5, n), f"https://x.example/{n}")] if n % 2 else [],
                views=[(at(6, n), f"https://x.example/v{n}")] if n % 3 == 0 else [])
            for n in range(13)]},
        {"id": 31, "name": "Small", "activities": [
            row(f"s{n}@example.com", at(8, n), contact=200 + n, opens=[at(9, n)])
            for n in range(4)]},
    ], [survey(9, "Feedback", [
        response(f"f{n}@example.com", at(10, n), at(10, n, 5), [(16, None, 1 + n % 2)])
        for n in range(7)])])


def test_a_small_page_size_reads_the_same_events_over_many_pages(
    cluster: EmulatorCluster, engagement: DotdigitalEngagement
) -> None:
    many(cluster)
    whole = read(engagement)

    pages = read(engagement, page_size=4)

    assert events(pages) == events(whole)
    assert len(events(whole)) == 13 * 3 + 6 + 5 + 4 * 2 + 7
    assert len({(e.email, e.kind, e.at, e.source_id) for e in events(whole)}) == \
        len(events(whole))
    assert len(pages) >= 20
    assert all(len(page.events) <= 4 for page in pages)
    assert [page.next_marker is None for page in pages] == [False] * (len(pages) - 1) + [True]


def test_resuming_from_every_saved_marker_gives_exactly_the_rest(
    cluster: EmulatorCluster, engagement: DotdigitalEngagement
) -> None:
    many(cluster)
    pages = read(engagement, page_size=3)

    for number, page in enumerate(pages[:-1]):
        assert page.next_marker is not None
        rest = read(engagement, marker=page.next_marker, page_size=3)
        assert events(rest) == events(pages[number + 1 :]), f"resumed after page {number}"
        assert rest[-1].next_marker is None


def test_a_row_that_moves_to_the_end_mid_read_hides_no_other_row(
    cluster: EmulatorCluster, engagement: DotdigitalEngagement
) -> None:
    emails = [f"m{n}@example.com" for n in range(8)]
    seed(cluster, [{"id": 40, "name": "Moving", "activities": [
        row(email, at(2, n), contact=1 + n) for n, email in enumerate(emails)]}])
    pages = engagement.events(ACCOUNT, SINCE, UNTIL, page_size=4)
    first = next(pages)
    assert [e.email for e in first.events] == emails[:4]

    # Two rows already read gain activity: they move behind the unread ones.
    admin(cluster, "dotdigital", "POST", "engagement/campaign-activity", {
        "accountId": ACCOUNT_ID, "campaignId": 40,
        "activities": [row(emails[0], at(2, 0), contact=1, opens=[at(20)]),
                       row(emails[2], at(2, 2), contact=3, opens=[at(21)])]})
    rest = list(pages)

    sends = [e.email for e in events([first, *rest]) if e.kind == "send"]
    assert set(sends) == set(emails)
    assert sends[:8] == emails  # the moved rows may come again, never instead of another


@pytest.mark.exact_requests
def test_requests_per_thousand_events(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform,
    engagement: DotdigitalEngagement,
) -> None:
    seed(cluster, [
        {"id": 50, "name": "Newsletter", "dateSent": iso(at(2)), "activities": [
            row(f"n{n:04d}@example.com", at(2), contact=1 + n, opens=[at(3, 0, n % 60)],
                clicks=[(at(4, 0, n % 60), "https://news.example/")]) for n in range(2500)]},
        {"id": 51, "name": "Sends only", "dateSent": iso(at(2)), "activities": [
            row(f"o{n:03d}@example.com", at(2), contact=5000 + n) for n in range(100)]},
    ], [survey(9, "Feedback", [
        response(f"f{n}@example.com", at(10), at(10, 1), [(16, None, 1)]) for n in range(50)])])
    platform.describe_account(ACCOUNT)  # the region, once per process
    before = platform.stats.requests

    total = sum(len(page.events) for page in engagement.events(ACCOUNT, SINCE, UNTIL))

    requests = platform.stats.requests - before
    assert total == 2500 * 3 + 100 + 50
    # 2 lists (campaigns, surveys); Newsletter: 2 activity pages (2000 rows, then the 20-row
    # overlap and 500), 3 open and 3 click pages, no page-view call (its rows count none);
    # Sends only: 1 activity page and nothing else; Feedback: 1 response page and its fields.
    assert requests == 2 + (2 + 3 + 3) + 1 + (1 + 1)
    per_thousand = requests * 1000 / total
    assert per_thousand == pytest.approx(1.70, abs=0.01)


@pytest.mark.exact_requests
@pytest.mark.parametrize("marker", [
    "", "x", "eng1", "eng1|cmp|10|activities|0|", "eng1|cmp|10|replies|0||",
    "eng1|srv|7|opens|0||", "eng1|srv|7|responses|0||o", "eng1|cmp|-1|activities|0||",
    "eng1|cmp|10|activities|2|1,2,3|", "eng1|cmp|10|activities|5|1,,2|",
    "eng1|cmp|10|opens|0||po", "eng1|cmp|99999999999999999999|opens|0||",
    "eng2|cmp|10|activities|0||", "sup|2026-06-01T00:00:00Z|0|",
])
def test_a_malformed_marker_is_refused_before_any_request(
    engagement: DotdigitalEngagement, platform: DotdigitalEmailPlatform, marker: str
) -> None:
    with pytest.raises(ValueError):
        engagement.events(ACCOUNT, SINCE, UNTIL, marker=marker)
    assert platform.stats.requests == 0


def test_bad_arguments_are_refused(engagement: DotdigitalEngagement) -> None:
    with pytest.raises(ValueError):
        engagement.events(ACCOUNT, UNTIL, SINCE)
    with pytest.raises(ValueError):
        engagement.events(ACCOUNT, SINCE.replace(tzinfo=None), UNTIL)
    for size in (0, 2001):
        with pytest.raises(ValueError):
            engagement.events(ACCOUNT, SINCE, UNTIL, page_size=size)


def test_a_saved_engagement_position_always_reads_back_whatever_the_ids() -> None:
    big = markers.Position(markers.CAMPAIGNS, 3_000_000_001, markers.OPENS, 4,
                           (2_147_483_648, 9_223_372_036_854_775_807), "oc")
    assert markers.decode(markers.encode(big)) == big
    with pytest.raises(ValueError, match="outside int64"):
        markers.encode(markers.Position(markers.CAMPAIGNS, 1, markers.OPENS, 1, (2**63,)))
