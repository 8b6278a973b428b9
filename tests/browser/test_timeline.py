"""The Engagement timeline page in a real browser: the form's ribbon button, the page in its
dialog, the connector's timeline API (the record read as the user) and the event store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from shared import bootstrap
from tests.browser.conftest import Harness, dialog, shoot
from tests.e2e.test_timeline_api import PAGE_URL, SPRING_URL, story

TIMEOUT_MS = 30_000
SEEDED_DAYS = {"2026-03-02", "2026-03-03", "2026-03-05"}


@pytest.fixture(scope="module")
def seeded(harness: Harness) -> Iterator[Harness]:
    ann = harness.world.records["ann"]
    hidden = harness.world.records["hidden"]
    # Hal's events exist: the page must still refuse them to a user who may not read Hal.
    bootstrap.services().event_store.write([*story(str(ann.email)), *story(str(hidden.email))])
    yield harness


def open_timeline(harness: Harness, page: Page, key: str, state: str = "ready") -> FrameLocator:
    harness.open_form(page, key)
    page.get_by_role("button", name="Engagement timeline").click()
    frame = dialog(page)
    expect(frame.locator(f"body[data-state='{state}']")).to_have_count(1, timeout=TIMEOUT_MS)
    return frame


def toggle(frame: FrameLocator, kind: str) -> None:
    button = frame.locator(f"li.event[data-kind='{kind}'] button.toggle").first
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")


@pytest.mark.parametrize("page", [100, 200], indirect=True, ids=["100%", "200%"])
def test_summary_first_and_last_and_the_chart(
    seeded: Harness, page: Page, request: pytest.FixtureRequest
) -> None:
    zoom = request.node.callspec.params["page"]
    frame = open_timeline(seeded, page, "ann")
    expect(frame.locator("#person-name")).to_have_text("Ann Archer")
    expect(frame.locator("#person-email")).to_have_text("ann.archer@example.com")
    counts = {name: frame.locator(f"#count-{name}").inner_text()
              for name in ("sends", "opens", "clicks", "pageViews", "formResponses")}
    assert counts == {"sends": "2", "opens": "2", "clicks": "1", "pageViews": "1",
                      "formResponses": "1"}
    expect(frame.locator("#first-at")).to_have_attribute("data-at", "2026-03-02T09:00:00Z")
    expect(frame.locator("#last-at")).to_have_attribute("data-at", "2026-03-05T12:00:00Z")
    expect(frame.locator("#first-at")).to_contain_text("2026")
    bars = frame.locator("#chart svg rect.bar")
    expect(bars.first).to_be_visible()
    assert {bars.nth(i).get_attribute("data-bucket") for i in range(bars.count())} == SEEDED_DAYS
    assert sum(int(str(bars.nth(i).get_attribute("data-count")))
               for i in range(bars.count())) == 7
    expect(frame.locator("#legend li")).to_have_count(5)
    expect(frame.locator("li.event")).to_have_count(7)
    expect(frame.locator("li.event").first).to_have_attribute("data-kind", "form_response")
    shoot(page, f"timeline-summary-{zoom}")


def test_the_emails_filter_requeries(seeded: Harness, page: Page) -> None:
    frame = open_timeline(seeded, page, "ann")
    frame.get_by_label("Emails").check()
    expect(frame.locator("li.event")).to_have_count(4, timeout=TIMEOUT_MS)
    kinds = frame.locator("li.event")
    assert {kinds.nth(i).get_attribute("data-kind") for i in range(4)} == {"send", "open"}
    expect(frame.locator("#count-clicks")).to_have_text("1")  # the person's summary stays
    shoot(page, "timeline-emails-filter")
    frame.get_by_label("All").check()
    expect(frame.locator("li.event")).to_have_count(7, timeout=TIMEOUT_MS)


def test_expanding_a_click_a_page_visit_and_a_form(seeded: Harness, page: Page) -> None:
    frame = open_timeline(seeded, page, "ann")
    for kind in ("click", "page_view", "form_response"):
        toggle(frame, kind)
    expect(frame.locator("li.event[data-kind='click'] .details")).to_contain_text(SPRING_URL)
    visit = frame.locator("li.event[data-kind='page_view'] .details")
    expect(visit).to_contain_text("Page visited")
    expect(visit).to_contain_text(PAGE_URL)
    form = frame.locator("li.event[data-kind='form_response'] .details")
    expect(form).to_contain_text("How did we do?")
    expect(form).to_contain_text("Great")
    expect(form).to_contain_text("Would you come back?")
    shoot(page, "timeline-expanded")
    frame.locator("li.event[data-kind='click'] button.toggle").click()
    expect(frame.locator("li.event[data-kind='click'] .details")).to_be_hidden()


@pytest.mark.parametrize("page", [200], indirect=True, ids=["200%"])
def test_keyboard_only_at_200_percent(seeded: Harness, page: Page) -> None:
    frame = open_timeline(seeded, page, "ann")
    frame.get_by_label("All").focus()
    page.keyboard.press("ArrowRight")  # a radio group moves and checks with the arrows
    expect(frame.get_by_label("Emails")).to_be_checked()
    expect(frame.locator("li.event")).to_have_count(4, timeout=TIMEOUT_MS)
    page.keyboard.press("Tab")
    first = frame.locator("li.event button.toggle").first
    expect(first).to_be_focused()
    page.keyboard.press("Enter")
    expect(first).to_have_attribute("aria-expanded", "true")
    shoot(page, "timeline-keyboard-200")


def test_a_person_with_no_events_shows_the_empty_state(seeded: Harness, page: Page) -> None:
    frame = open_timeline(seeded, page, "empty", state="empty")
    expect(frame.locator("#empty-state")).to_have_text(
        "No engagement recorded for this person yet.")
    expect(frame.locator("#count-sends")).to_have_text("0")
    expect(frame.locator("#chart")).to_be_hidden()
    shoot(page, "timeline-empty")


def test_an_unreadable_record_shows_why(seeded: Harness, page: Page) -> None:
    frame = open_timeline(seeded, page, "hidden", state="error")
    expect(frame.get_by_role("alert")).to_have_text("You may not read this record in CRM.")
    expect(frame.locator("li.event")).to_have_count(0)
    expect(frame.locator("#count-sends")).not_to_have_text("2")
    shoot(page, "timeline-not-allowed")


def test_everything_the_page_loads_comes_from_the_solution_or_the_connector(
    seeded: Harness, page: Page
) -> None:
    requested: list[str] = []
    page.on("request", lambda sent: requested.append(sent.url))
    frame = open_timeline(seeded, page, "ann")
    toggle(frame, "click")
    frame.locator("input[value='emails']").check()
    expect(frame.locator("body[data-state='ready']")).to_have_count(1, timeout=TIMEOUT_MS)
    frontend = seeded.stack.host.http
    assert frontend is not None
    allowed = (f"{seeded.page_server.origin}/", f"{frontend.base_url}/api/")
    page_files = [url for url in requested if "/WebResources/ec_/timeline/" in url]
    assert page_files, requested  # the page itself was loaded and seen
    assert any(url.startswith(f"{frontend.base_url}/api/timeline") for url in requested)
    assert [url for url in requested if not url.startswith(allowed)] == []
