"""The Engagement timeline API through the function, the services, the Dataverse emulator (the
record read as the user) and the event store on Azurite: one store query per view."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_stack import LocalStack
from shared import bootstrap
from shared.adapters.storage.event_store import TableEventStore
from shared.domain.engagement import EngagementEvent, EventKind
from shared.entrypoints import timeline_api
from tests.e2e.conftest import stack_for
from tests.e2e.log_secrets import account_secrets, assert_no_secret_logged
from tests.e2e.org import Org
from tests.e2e.test_ribbon_api import ADA, ADA_USER, call, requests_served, token

FIRST = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LAST = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
SPRING_URL = "https://shop.example.com/spring?utm_source=news"
PAGE_URL = "https://shop.example.com/spring"
ANSWERS = [{"question": "How did we do?", "answer": "Great"},
           {"question": "Would you come back?", "answer": "Yes"}]
MANY = 120  # events of the paging person: pages of 50, 50 and 20


def story(email: str) -> list[EngagementEvent]:
    """Seven interactions over three days: two sends and opens, a click, a page visit, a form."""
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 3, day, hour, minute, tzinfo=UTC)

    return [
        EngagementEvent(email, EventKind.SEND, FIRST, "501", "Spring news"),
        EngagementEvent(email, EventKind.OPEN, at(2, 9, 30), "501", "Spring news",
                        {"mail_client": "Outlook"}),
        EngagementEvent(email, EventKind.CLICK, at(3, 10), "501", "Spring news",
                        {"url": SPRING_URL}),
        EngagementEvent(email, EventKind.PAGE_VIEW, at(3, 10, 1), "site", "Spring range",
                        {"url": PAGE_URL}),
        EngagementEvent(email, EventKind.SEND, at(5, 8), "502", "Weekend offers"),
        EngagementEvent(email, EventKind.OPEN, at(5, 11), "502", "Weekend offers"),
        EngagementEvent(email, EventKind.FORM_RESPONSE, LAST, "77", "Feedback survey",
                        {"response_id": "r-1", "answers": ANSWERS}),
    ]


def many(email: str) -> list[EngagementEvent]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [EngagementEvent(email, EventKind.SEND, start + timedelta(hours=n), str(600 + n),
                            f"Campaign {n}") for n in range(MANY)]


def event_store() -> TableEventStore:
    store = bootstrap.services().event_store
    assert isinstance(store, TableEventStore)
    return store


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LocalStack, dict[str, str]]]:
    org = Org(email_accounts=1)
    ids = {name: org.add_crm("contacts", email) for name, email in (
        ("ann", "Ann@Example.com"), ("pat", "pat@example.com"), ("quiet", "quiet@example.com"),
        ("blank", None), ("hidden", "hid@example.com"))}
    ids["lead"] = org.add_crm("leads", "lead@example.com")
    for row in org.tables["contacts"]:  # Ada reads her own contacts only
        row["firstname"] = "Ann" if row["contactid"] == ids["ann"] else "Someone"
        row["lastname"] = "Archer" if row["contactid"] == ids["ann"] else "Else"
        row["_ownerid_value"] = ADA_USER if row["contactid"] != ids["hidden"] else str(
            uuid.UUID(int=0xB0B))
    dataset = org.dataset()
    dataset["dataverse"]["users"] = [
        {"oid": ADA, "systemuserid": ADA_USER, "read": {"contact": "user", "lead": "organization"}}]
    with stack_for(dataset) as stack:
        # The store matches by match key: the address as CRM spells it finds these events.
        event_store().write([*story("ann@example.com"), *many("pat@example.com"),
                             *story("hid@example.com"), *story("lead@example.com")])
        yield stack, ids


def view(stack: LocalStack, **params: str) -> tuple[int, Any]:
    return call(timeline_api.engagement_timeline, params=params, bearer=token(stack))


def test_the_summary_counts_and_first_and_last_interaction(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, ids = world
    store = event_store()
    before = store.queries
    status, answer = view(stack, entity="contact", id=ids["ann"])
    assert status == 200, answer
    assert store.queries - before == 1  # one event-store query per view
    assert answer["name"] == "Ann Archer" and answer["email"] == "Ann@Example.com"
    assert answer["summary"] == {"sends": 2, "opens": 2, "clicks": 1, "pageViews": 1,
                                 "formResponses": 1, "first": "2026-03-02T09:00:00Z",
                                 "last": "2026-03-05T12:00:00Z"}
    assert [e["kind"] for e in answer["events"]] == [
        "form_response", "open", "send", "page_view", "click", "open", "send"]  # newest first
    form, click = answer["events"][0], answer["events"][4]
    assert form["details"]["answers"] == ANSWERS and form["title"] == "Feedback survey"
    assert form["sourceId"] == "77" and form["at"] == "2026-03-05T12:00:00Z"
    assert click["details"] == {"url": SPRING_URL} and len(click["id"]) == 32
    assert answer["continuation"] is None and answer["message"] is None


def test_a_lead_has_its_timeline_too(world: tuple[LocalStack, dict[str, str]]) -> None:
    stack, ids = world
    status, answer = view(stack, entity="lead", id=ids["lead"].upper(), filter="all")
    assert status == 200 and answer["summary"]["sends"] == 2 and len(answer["events"]) == 7


def test_the_emails_filter_lists_sends_and_opens_only(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, ids = world
    store = event_store()
    before = store.queries
    status, answer = view(stack, entity="contact", id=ids["ann"], filter="emails")
    assert status == 200 and store.queries - before == 1
    assert [e["kind"] for e in answer["events"]] == ["open", "send", "open", "send"]
    assert answer["summary"]["clicks"] == 1  # the summary still describes the person


def test_paging_with_the_continuation(world: tuple[LocalStack, dict[str, str]]) -> None:
    stack, ids = world
    store = event_store()
    seen: list[str] = []
    status, first = view(stack, entity="contact", id=ids["pat"])
    assert status == 200 and first["summary"]["sends"] == MANY
    seen += [e["sourceId"] for e in first["events"]]
    continuation = first["continuation"]
    pages = 1
    while continuation:
        before = store.queries
        status, more = view(stack, entity="contact", id=ids["pat"], continuation=continuation)
        assert status == 200 and store.queries - before == 1
        assert more["summary"] is None  # the page already shows it
        seen += [e["sourceId"] for e in more["events"]]
        continuation, pages = more["continuation"], pages + 1
    assert len(first["events"]) == 50 and pages == 3
    assert seen == [str(600 + n) for n in reversed(range(MANY))]  # each once, newest first
    status, small = view(stack, entity="contact", id=ids["pat"], limit="200")
    assert status == 200 and len(small["events"]) == MANY and small["continuation"] is None


def test_a_person_without_events_and_a_record_without_address(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, ids = world
    status, quiet = view(stack, entity="contact", id=ids["quiet"])
    assert status == 200 and quiet["events"] == [] and quiet["summary"]["first"] is None
    store = event_store()
    before = store.queries
    status, blank = view(stack, entity="contact", id=ids["blank"])
    assert status == 200 and blank["events"] == [] and blank["email"] is None
    assert "no email address" in blank["message"] and blank["summary"]["sends"] == 0
    assert store.queries == before  # nothing to look up


def test_a_record_the_user_cannot_read_is_403_and_a_missing_one_404(
    world: tuple[LocalStack, dict[str, str]]
) -> None:
    stack, ids = world
    store = event_store()
    before = store.queries
    status, answer = view(stack, entity="contact", id=ids["hidden"])
    assert status == 403 and answer == {"error": "You may not read this record in CRM."}
    status, answer = view(stack, entity="contact", id=str(uuid.uuid4()))
    assert status == 404 and "not found" in answer["error"]
    assert store.queries == before  # the events of a hidden record are never read


@pytest.mark.parametrize("claims", [
    {"claims": {"exp": 1_000_000_000, "nbf": 999_990_000, "iat": 999_990_000}},  # expired
    {"audience": "api://someone-else"},
    {"scopes": ["other_scope"]},
    None,  # no token at all
])
def test_a_refused_token_gets_401_and_nothing_is_read(
    world: tuple[LocalStack, dict[str, str]], claims: dict[str, Any] | None
) -> None:
    stack, ids = world
    bearer = None if claims is None else token(stack, **claims)
    store = event_store()
    before, queries = requests_served(stack), store.queries
    status, answer = call(timeline_api.engagement_timeline, bearer=bearer,
                          params={"entity": "contact", "id": ids["ann"]})
    assert status == 401 and "token" in answer["error"]
    assert requests_served(stack) == before and store.queries == queries


@pytest.mark.parametrize(("params", "message"), [
    ({"entity": "account"}, "entity"),
    ({"id": "not-a-guid"}, "GUID"),
    ({"filter": "clicks"}, "filter"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"continuation": "not base64!"}, "continuation"),
    ({"continuation": "bm90IGpzb24"}, "continuation"),  # base64 of text that is not JSON
    ({"x": "1"}, "unknown parameters"),
])
def test_bad_input_gets_400_with_the_rule(
    world: tuple[LocalStack, dict[str, str]], params: dict[str, str], message: str
) -> None:
    stack, ids = world
    status, answer = view(stack, **{"entity": "contact", "id": ids["ann"], **params})
    assert status == 400 and message in answer["error"], answer


def test_no_address_name_or_token_appears_in_the_logs(
    world: tuple[LocalStack, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    stack, ids = world
    caplog.set_level(logging.DEBUG)
    answers = [view(stack, entity="contact", id=ids["ann"])[0],
               view(stack, entity="contact", id=ids["pat"], filter="emails")[0],
               view(stack, entity="contact", id=ids["hidden"])[0],
               view(stack, entity="lead", id=ids["lead"])[0],
               view(stack, entity="contact", id="not-a-guid")[0],
               call(timeline_api.engagement_timeline,
                    params={"entity": "contact", "id": ids["ann"]},
                    bearer=token(stack, audience="api://someone-else"))[0]]
    assert answers == [200, 200, 403, 200, 400, 401]
    secrets = ["ann@example.com", "pat@example.com", "hid@example.com", "lead@example.com",
               "Archer", *account_secrets(stack.dataset), stack.values["ENTRA_CLIENT_SECRET"]]
    assert_no_secret_logged(caplog, secrets)
