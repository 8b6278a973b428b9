"""The Automation Programs dialog in a real browser, from the ribbon button to dotdigital."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    BIRTHDAY,
    WELCOME,
    WINBACK,
    Harness,
    dialog,
    shoot,
)

EMPTY_TEXT = ("Can't find your program in the list? You need to enable your program in the "
              "settings. Ask your CRM administrator for help.")
TIMEOUT_MS = 30_000


def open_programs(page: Page) -> None:
    page.get_by_role("button", name="Automation Programs").click()
    expect(dialog(page).locator("#status")).to_contain_text("programs listed",
                                                            timeout=TIMEOUT_MS)


def outcomes(page: Page) -> dict[tuple[str, str], str]:
    rows = dialog(page).locator("#results-table tbody tr")
    expect(rows.first).to_be_visible(timeout=TIMEOUT_MS)
    found = {}
    for index in range(rows.count()):
        row = rows.nth(index)
        found[(str(row.get_attribute("data-record")), str(row.get_attribute("data-program")))] = \
            str(row.get_attribute("data-outcome"))
    return found


@pytest.mark.parametrize("page", [100, 200], indirect=True, ids=["100%", "200%"])
def test_the_list_shows_active_programs_and_greys_out_inactive_ones(
    harness: Harness, page: Page, request: pytest.FixtureRequest
) -> None:
    zoom = request.node.callspec.params["page"]
    harness.open_form(page, "listing")
    open_programs(page)
    frame = dialog(page)
    labels = frame.locator("#program-list label")
    expect(labels).to_have_count(3)  # the Draft program is not enabled for CRM users
    expect(frame.get_by_label("Birthday program")).to_be_enabled()
    expect(frame.get_by_label("Welcome series")).to_be_enabled()
    expect(frame.get_by_label("Winback")).to_be_disabled()
    expect(frame.locator("#program-list li.inactive")).to_contain_text("Deactivated")
    expect(frame.locator("#empty-state")).to_be_hidden()
    expect(frame.get_by_role("button", name="Add")).to_be_disabled()
    expect(frame.get_by_label("Email account")).to_have_value(harness.world.org.ids[0])
    shoot(page, f"list-active-and-inactive-{zoom}")


def test_two_programs_for_one_contact_then_the_dialog_closes(harness: Harness, page: Page) -> None:
    ann = harness.world.records["ann"]
    harness.open_form(page, "ann")
    open_programs(page)
    frame = dialog(page)
    frame.get_by_label("Birthday program").check()
    frame.get_by_label("Welcome series").check()
    frame.get_by_role("button", name="Add").click()
    expect(frame.get_by_role("button", name="Adding")).to_be_disabled()
    expect(frame.locator("form")).to_have_attribute("aria-busy", "true")
    shoot(page, "two-programs-busy")
    expect(frame.locator("#status")).to_contain_text("Every record was enrolled",
                                                     timeout=TIMEOUT_MS)
    assert outcomes(page) == {(ann.id, str(BIRTHDAY)): "enrolled",
                              (ann.id, str(WELCOME)): "enrolled"}
    shoot(page, "two-programs-enrolled")
    expect(page.locator(".dialog-backdrop")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.locator("#record-form h1")).to_have_text("Ann Archer")
    expect(page.locator("#refreshed")).to_have_text("Form refreshed 1 time(s).")
    shoot(page, "two-programs-closed")
    assert harness.enrolled(BIRTHDAY, str(ann.email))
    assert harness.enrolled(WELCOME, str(ann.email))


def test_several_leads_from_a_grid(harness: Harness, page: Page) -> None:
    leads = [harness.world.records[f"lead{i}"] for i in range(3)]
    harness.open_grid(page, "lead")
    for lead in leads[:2]:
        page.get_by_label(f"Select {lead.name}").check()
    open_programs(page)
    frame = dialog(page)
    expect(frame.locator("#records-summary")).to_have_text("Enrol 2 leads in automation programs.")
    frame.get_by_label("Welcome series").check()
    frame.get_by_role("button", name="Add").click()
    assert outcomes(page) == {(lead.id, str(WELCOME)): "enrolled" for lead in leads[:2]}
    expect(frame.locator("#results-table")).to_contain_text(leads[0].name)
    shoot(page, "grid-two-leads-enrolled")
    expect(page.locator(".dialog-backdrop")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.locator("#refreshed")).to_have_text("Grid refreshed 1 time(s).")
    assert harness.enrolled(WELCOME, str(leads[0].email))
    assert not harness.enrolled(WELCOME, str(leads[2].email))


def test_the_empty_state_when_no_program_is_enabled(harness: Harness, page: Page) -> None:
    harness.open_form(page, "empty")
    open_programs(page)
    frame = dialog(page)
    frame.get_by_label("Email account").select_option(label="Brand 2")
    expect(frame.locator("#empty-state")).to_be_visible(timeout=TIMEOUT_MS)
    expect(frame.locator("#empty-state")).to_have_text(EMPTY_TEXT)
    expect(frame.locator("#program-list li")).to_have_count(0)
    expect(frame.get_by_role("button", name="Add")).to_be_disabled()
    shoot(page, "empty-state")


def test_a_record_the_user_cannot_read_is_reported_not_enrolled(
    harness: Harness, page: Page
) -> None:
    hidden = harness.world.records["hidden"]
    harness.open_form(page, "hidden")
    open_programs(page)
    frame = dialog(page)
    frame.get_by_label("Birthday program").check()
    frame.get_by_role("button", name="Add").click()
    assert outcomes(page) == {(hidden.id, str(BIRTHDAY)): "not allowed"}
    expect(frame.locator("#results-table")).to_contain_text("Not enrolled")
    expect(frame.locator("#status")).to_contain_text("0 of 1 enrolments succeeded")
    expect(page.locator(".dialog-backdrop")).to_have_count(1)  # stays open with the result
    shoot(page, "not-allowed")
    assert not harness.enrolled(BIRTHDAY, str(hidden.email))


def test_a_suppressed_contact_is_reported(harness: Harness, page: Page) -> None:
    sam = harness.world.records["sam"]
    harness.open_form(page, "sam")
    open_programs(page)
    frame = dialog(page)
    frame.get_by_label("Birthday program").check()
    frame.get_by_role("button", name="Add").click()
    assert outcomes(page) == {(sam.id, str(BIRTHDAY)): "suppressed"}
    expect(frame.locator("#results-table")).to_contain_text("suppressed in dotdigital")
    shoot(page, "suppressed")
    frame.get_by_role("button", name="Close").click()
    expect(page.locator(".dialog-backdrop")).to_have_count(0)
    assert not harness.enrolled(BIRTHDAY, str(sam.email))


def test_a_contact_unknown_to_dotdigital_is_created_then_enrolled(
    harness: Harness, page: Page
) -> None:
    nina = harness.world.records["nina"]
    before = harness.stack.dotdigital.state(accountId="2001")["accounts"][0]["contacts"]
    assert all(str(c["email"]).lower() != nina.email for c in before)
    harness.open_form(page, "nina")
    open_programs(page)
    frame = dialog(page)
    frame.get_by_label("Welcome series").check()
    frame.get_by_role("button", name="Add").click()
    assert outcomes(page) == {(nina.id, str(WELCOME)): "enrolled"}
    shoot(page, "unknown-contact-created-enrolled")
    expect(page.locator(".dialog-backdrop")).to_have_count(0, timeout=TIMEOUT_MS)
    assert harness.enrolled(WELCOME, str(nina.email))


@pytest.mark.parametrize("page", [200], indirect=True, ids=["200%"])
def test_keyboard_only_at_200_percent(harness: Harness, page: Page) -> None:
    kim = harness.world.records["kim"]
    harness.open_form(page, "kim")
    page.get_by_role("button", name="Automation Programs").focus()
    page.keyboard.press("Enter")
    frame = dialog(page)
    expect(frame.locator("#status")).to_contain_text("programs listed", timeout=TIMEOUT_MS)
    # Focus lands on the first program; Space ticks it, Tab skips the inactive one.
    expect(frame.get_by_label("Birthday program")).to_be_focused()
    page.keyboard.press("Tab")
    expect(frame.get_by_label("Welcome series")).to_be_focused()
    page.keyboard.press("Space")
    expect(frame.get_by_label("Welcome series")).to_be_checked()
    page.keyboard.press("Tab")
    expect(frame.get_by_role("button", name="Add")).to_be_focused()
    shoot(page, "keyboard-200-selected")
    page.keyboard.press("Enter")
    expect(frame.locator("#status")).to_contain_text("Every record was enrolled",
                                                     timeout=TIMEOUT_MS)
    shoot(page, "keyboard-200-enrolled")
    expect(page.locator(".dialog-backdrop")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.get_by_role("button", name="Automation Programs")).to_be_focused()
    assert harness.enrolled(WELCOME, str(kim.email))
    assert not harness.enrolled(WINBACK, str(kim.email))
