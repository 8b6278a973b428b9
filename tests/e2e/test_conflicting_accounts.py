"""One address in several dotdigital accounts with different opt-in types: every CRM record ends
with the highest type, whatever order the accounts' runs and their batches are applied in."""

from __future__ import annotations

import random

from tests.e2e.conftest import stack_for
from tests.e2e.org import OPT_IN_NAMES, Org, value_of

ORDERS = ((0, 1, 2), (2, 1, 0), (1, 2, 0))


def test_three_accounts_give_every_record_the_highest_type_in_any_order() -> None:
    rng = random.Random(4)
    org = Org(email_accounts=3)
    for account in range(3):
        org.add_schedule(account)
    initial: dict[str, str | None] = {}
    expected: dict[str, int | None] = {}
    for n in range(60):
        address = f"Shared{n}@Example.com" if n % 3 else f"shared{n}@example.com"
        start = rng.choice((None, *OPT_IN_NAMES))
        row_id = org.add_crm(("contacts", "leads")[n % 2], address.lower(), start)
        initial[row_id] = start
        incoming = [value_of(start)] if start else []
        for account in range(3):
            if rng.random() < 0.7:
                name = rng.choice(OPT_IN_NAMES)
                org.add_dotdigital(account, address, name)
                incoming.append(value_of(name))
        expected[row_id] = max((v for v in incoming if v is not None), default=None)
    absent = org.add_crm("contacts", "only.in.crm@example.com")
    initial[absent], expected[absent] = None, None
    assert len(set(expected.values())) == 5  # every type, and unset, occur

    def state() -> dict[str, int | None]:
        return {**stack.values_of("contacts"), **stack.values_of("leads")}

    def restore() -> None:
        for entity_set, key in (("contacts", "contactid"), ("leads", "leadid")):
            rows = {row_id: {"ec_optintype": value_of(initial[row_id])}
                    for row_id in stack.values_of(entity_set)}
            stack.dataverse.update_rows(entity_set, rows, primary_key=key)

    # Eight shards over eight concurrent sessions: batches of different shards interleave
    # freely; one address's changes stay in one session.
    with stack_for(org.dataset(), OPTIN_SHARDS="8") as stack:
        stack.request_sync_now()  # all three accounts in one cycle
        stack.run_until_complete(timeout_s=60)
        assert state() == expected
        for order in ORDERS:
            restore()
            assert state() != expected
            for account in order:  # one account's run after another
                stack.request_sync_now(email_accounts=[org.ids[account]])
                stack.run_until_complete(timeout_s=60)
            assert state() == expected, order
