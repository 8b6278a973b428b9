"""Browser tests of the Automation Programs dialog: real headless Chromium (Playwright) on the
local CRM page stand-in, calling the connector's HTTP API in the dev host (another origin, so
CORS is exercised) against the emulators.

One organisation serves the whole module (records are not reused between tests):

- email account Brand 1 (default): programs Birthday and Welcome (Active), Winback
  (Deactivated), enabled for CRM users; Spring draft (Draft) mirrored but not enabled.
- email account Brand 2: one Active program, not enabled (the dialog's empty state).
- Ada (the signed-in user) reads leads of the organisation, contacts she owns only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, FrameLocator, Page, Playwright, sync_playwright

from devtools.crm_page import CrmPage, PageRecord
from devtools.local_stack import ROOT, LocalStack
from shared.adapters.dataverse.programs import row_id_for
from tests.e2e.conftest import FAST, suppress
from tests.e2e.org import Org

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / ".run" / "screenshots"
ADA_OID = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01"
ADA_UPN = "ada.lovelace@connectordev.onmicrosoft.com"
ADA_USER_ID = "6d1f0a52-0000-4000-8000-00000000ada1"
OTHER_OWNER = "6d1f0a52-0000-4000-8000-0000000000b2"
BIRTHDAY, WELCOME, WINBACK, DRAFT, BRAND2_ONLY = 101, 102, 103, 104, 201
PROGRAMS = {
    0: [(BIRTHDAY, "Birthday program", "Active", True),
        (WELCOME, "Welcome series", "Active", True),
        (WINBACK, "Winback", "Deactivated", True),
        (DRAFT, "Spring draft", "Draft", False)],
    1: [(BRAND2_ONLY, "Brand 2 newsletter journey", "Active", False)],
}


@dataclass
class World:
    """The seeded organisation, by role: record ids and their addresses."""

    org: Org
    records: dict[str, PageRecord] = field(default_factory=dict)

    def add(self, key: str, entity: str, name: str, email: str | None, *,
            owner: str = ADA_USER_ID, in_dotdigital: bool = True) -> PageRecord:
        entity_set = {"contact": "contacts", "lead": "leads"}[entity]
        row_id = self.org.add_crm(entity_set, email)
        row = self.org.tables[entity_set][-1]
        first, _, last = name.partition(" ")
        row.update({"firstname": first, "lastname": last or first, "_ownerid_value": owner})
        if entity == "lead":
            row["subject"] = f"Enquiry from {name}"
        if email and in_dotdigital:
            self.org.dotdigital[0]["contacts"].append(
                {"email": email, "optInType": "Single"})
        record = PageRecord(entity, row_id, name, email)
        self.records[key] = record
        return record


def build_world() -> World:
    world = World(Org(email_accounts=2))
    org = world.org
    for account, programs in PROGRAMS.items():
        org.dotdigital[account]["programs"] = [
            {"id": pid, "name": name, "status": status} for pid, name, status, _ in programs]
        org.tables.setdefault("ec_programs", []).extend(
            {"ec_programid": row_id_for(org.ids[account], pid), "ec_name": name,
             "_ec_emailaccountid_value": org.ids[account], "ec_dotdigitalprogramid": pid,
             "ec_status": status, "ec_enabled": enabled, "statecode": 0, "statuscode": 1}
            for pid, name, status, enabled in programs)
    world.add("ann", "contact", "Ann Archer", "ann.archer@example.com")
    world.add("sam", "contact", "Sam Suppressed", "sam.suppressed@example.com")
    world.add("nina", "contact", "Nina New", "nina.new@example.com", in_dotdigital=False)
    world.add("hidden", "contact", "Hal Hidden", "hal.hidden@example.com", owner=OTHER_OWNER)
    world.add("kim", "contact", "Kim Keys", "kim.keys@example.com")
    world.add("empty", "contact", "Eve Empty", "eve.empty@example.com")
    world.add("listing", "contact", "Lee Listing", "lee.listing@example.com")
    for index, name in enumerate(("Liam Lead", "Lola Lead", "Lars Lead")):
        world.add(f"lead{index}", "lead", name, f"lead{index}@example.com")
    return world


def dataset(world: World) -> dict[str, Any]:
    seeded = world.org.dataset()
    seeded["dataverse"]["users"] = [{
        "oid": ADA_OID, "upn": ADA_UPN, "systemuserid": ADA_USER_ID,
        "read": {"contact": "user", "lead": "organization"},
    }]
    return seeded


@dataclass
class Harness:
    stack: LocalStack
    page_server: CrmPage
    browser: Browser
    world: World

    def open_form(self, page: Page, key: str) -> None:
        record = self.world.records[key]
        page.goto(self.page_server.url(record.entity, record_id=record.id))
        page.wait_for_selector("body[data-ready='true']")

    def open_grid(self, page: Page, entity: str) -> None:
        page.goto(self.page_server.url(entity, grid=True))
        page.wait_for_selector("body[data-ready='true']")

    def enrolled(self, program_id: int, email: str) -> bool:
        """Whether dotdigital has the address inside the program now."""
        state = self.stack.dotdigital.state(accountId="2001")
        account = state["accounts"][0]
        ids = {c["id"] for c in account["contacts"]
               if str(c["email"]).lower() == email.lower()}
        programs = {p["id"]: set(p.get("contacts") or []) for p in account["programs"]}
        return bool(ids & programs.get(program_id, set()))


def ensure_chromium() -> None:
    """Debian's Chromium (Playwright cannot download its own build here)."""
    if Path(CHROMIUM).exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    ensure_chromium()
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def harness(playwright_instance: Playwright) -> Iterator[Harness]:
    world = build_world()
    stack = LocalStack(dataset=dataset(world), settings=dict(FAST), lock_duration_s=5.0,
                       http=True)
    with stack:
        suppress(stack, 0, str(world.records["sam"].email), "Unsubscribed")
        frontend = stack.host.http
        assert frontend is not None, "the app serves no HTTP route (ribbon API not registered)"
        described = stack.cluster.describe()
        with CrmPage(api_base_url=f"{frontend.base_url}/api",
                     entra_url=described["entra"]["base_url"],
                     ca_bundle=described["ca_bundle"], user=ADA_UPN,
                     records=list(world.records.values()), close_delay_ms=1500) as page_server:
            # As Host.CORS names the CRM origin; the page's port is only known now.
            frontend.allow_origins([page_server.origin])
            browser = playwright_instance.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield Harness(stack, page_server, browser, world)
            finally:
                browser.close()


@pytest.fixture
def page(harness: Harness, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context; parametrize ``page`` (indirect) with 200 for the
    browser's 200% zoom: half the CSS pixels of the window, twice the device pixels."""
    zoom = int(getattr(request, "param", 100))
    scale = zoom / 100
    context = harness.browser.new_context(
        viewport={"width": round(1000 / scale), "height": round(800 / scale)},
        device_scale_factor=scale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


def dialog(page: Page) -> FrameLocator:
    return page.frame_locator(".dialog-frame iframe")


def shoot(page: Page, name: str) -> Path:
    """A screenshot of the whole page under .run/screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def token_for(harness: Harness) -> str:
    response = requests.post(f"{harness.page_server.origin}/_crm/token", timeout=30)
    response.raise_for_status()
    value: str = response.json()["accessToken"]
    return value


def new_id() -> str:
    return str(uuid.uuid4())
