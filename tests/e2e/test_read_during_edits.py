"""A run that spans many timer ticks while contacts are edited in dotdigital between them.

Reading by offset lost contacts here: an edited contact moved to the end of the modified-since
result, the next one slid into a page already read, and it was never synced. Reading by marker
(a position in dotdigital's change order) cannot skip anyone: this test edits contacts in pages
already read and in pages still to come, between ticks, and checks every contact's final type.
"""

from __future__ import annotations

import requests

from devtools.local_stack import LocalStack
from shared.domain.model import SyncStatus
from tests.e2e.conftest import stack_for
from tests.e2e.org import Org, value_of

CONTACTS = 5000
EDITED_PER_TICK = 5


def upsert(stack: LocalStack, org: Org, email: str, opt_in: str) -> None:
    """Change a contact through dotdigital's API, as a form or an import would."""
    account = org.dotdigital[0]
    response = requests.post(
        f"{stack.cluster.dotdigital_server.base_url}/{account['region']}/v2/contacts",
        json={"email": email, "optInType": opt_in, "emailType": "Html"},
        auth=(account["apiUser"], account["password"]), verify=stack.cluster.ca_bundle,
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text


def test_contacts_edited_during_a_multi_tick_read_are_all_applied() -> None:
    org = Org(email_accounts=1)
    schedule_id = org.add_schedule(0, sync_now=True)
    addresses = [f"person{n:05d}@example.com" for n in range(CONTACTS)]
    ids = {}
    for address in addresses:
        org.add_dotdigital(0, address, "Single")
        ids[address] = org.add_crm("contacts", address)
    expected = dict.fromkeys(addresses, "Single")
    # One page of 1,000 per tick: the run spans five ticks.
    with stack_for(org.dataset(), SYNC_READER_MAX_SECONDS="0", OPTIN_PAGES_PER_FLUSH="1",
                   OPTIN_SHARDS="2") as stack:
        ticks = 0
        while True:
            outcome = stack.trigger_timer()
            assert outcome.succeeded, outcome.describe_error()
            ticks += 1
            stack.wait_idle()
            schedule = next(s for s in stack.schedules() if s.row_id == schedule_id)
            if schedule.status is SyncStatus.NONE and not stack.unfinished_schedules():
                break
            assert ticks < 20, "the run did not finish"
            # Raise contacts in the page just read and in the last page, still to come.
            read_so_far = ticks * 1000
            for n in range(EDITED_PER_TICK):
                for index in (read_so_far - 1 - 37 * n, CONTACTS - 1 - 11 * n - 60 * ticks):
                    address = addresses[index]
                    if 0 <= index < CONTACTS and expected[address] == "Single":
                        expected[address] = "Double"
                        upsert(stack, org, address, "Double")
        assert ticks >= 5
        values = stack.values_of("contacts")
        wrong = [a for a in addresses if values[ids[a]] != value_of(expected[a])]
        assert wrong == []
        assert sum(1 for a in addresses if expected[a] == "Double") >= 40
        schedule = next(s for s in stack.schedules() if s.row_id == schedule_id)
        read = int((schedule.last_result or "").split(" read")[0].replace(",", ""))
        assert read >= CONTACTS, schedule.last_result
