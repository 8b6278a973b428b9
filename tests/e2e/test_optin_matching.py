"""Which CRM records an opt-in change reaches, and what it writes (architecture §1.1 C1, §4.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.local_stack import LocalStack
from devtools.run_report import build_report
from tests.e2e.conftest import stack_for
from tests.e2e.org import Org, value_of

LONG_LOCAL = "l" * 70 + "@example.com"  # dotdigital takes it; a local part > 64 cannot match


@pytest.fixture(scope="module")
def synced() -> Iterator[tuple[LocalStack, dict[str, str], dict[str, Any]]]:
    org = Org(email_accounts=1)
    org.add_schedule(0, sync_now=True)
    ids: dict[str, str] = {}
    # First sync fills empty values.
    org.add_dotdigital(0, "empty@example.com", "Double")
    ids["empty"] = org.add_crm("contacts", "empty@example.com")
    # A lower type never replaces a higher one; a higher one replaces a lower one.
    org.add_dotdigital(0, "higher@example.com", "Single")
    ids["higher"] = org.add_crm("contacts", "higher@example.com", "VerifiedDouble")
    org.add_dotdigital(0, "lower@example.com", "VerifiedDouble")
    ids["lower"] = org.add_crm("contacts", "lower@example.com", "Single")
    # One address on a contact, a lead and an account.
    org.add_dotdigital(0, "everywhere@example.com", "Double")
    ids["on_contact"] = org.add_crm("contacts", "everywhere@example.com", "Unknown")
    ids["on_lead"] = org.add_crm("leads", "Everywhere@Example.com")
    ids["on_account"] = org.add_crm("accounts", "everywhere@example.com", "Single")
    # Mixed case and padding on either side.
    org.add_dotdigital(0, "Mixed.Case@Example.COM", "Single")
    ids["recased"] = org.add_crm("contacts", "mixed.case@example.com")
    org.add_dotdigital(0, "padded@example.com", "Double")
    ids["padded"] = org.add_crm("contacts", "  Padded@example.com ")
    # Quotes, plus and ampersand match exactly, and only themselves.
    for name, address in (("quote", "o'brien@example.com"), ("plus", "ann+news@example.com"),
                          ("amp", "r&d@example.com")):
        org.add_dotdigital(0, address, "VerifiedDouble")
        ids[name] = org.add_crm("contacts", address)
    ids["near_quote"] = org.add_crm("contacts", "obrien@example.com")
    ids["near_plus"] = org.add_crm("contacts", "ann@example.com")
    ids["near_amp"] = org.add_crm("contacts", "r-d@example.com")
    # Counted and skipped: no CRM record, and an address that cannot match anything.
    org.add_dotdigital(0, "nobody@example.com", "Double")
    org.add_dotdigital(0, "other.nobody@example.com", "Single")
    org.add_dotdigital(0, LONG_LOCAL, "Double")
    ids["long_local"] = org.add_crm("contacts", LONG_LOCAL)
    with stack_for(org.dataset()) as stack:
        completion = stack.run_until_complete(timeout_s=60)
        yield stack, ids, build_report(stack, completion)


def values(stack: LocalStack) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for entity_set in ("contacts", "leads", "accounts"):
        found.update(stack.values_of(entity_set))
    return found


def test_first_sync_fills_empty_values(synced: tuple[LocalStack, dict[str, str], Any]) -> None:
    stack, ids, _ = synced
    assert values(stack)[ids["empty"]] == value_of("Double")


def test_a_lower_type_never_replaces_a_higher_one(
    synced: tuple[LocalStack, dict[str, str], Any],
) -> None:
    stack, ids, _ = synced
    found = values(stack)
    assert found[ids["higher"]] == value_of("VerifiedDouble")
    assert found[ids["lower"]] == value_of("VerifiedDouble")


def test_one_address_updates_its_contact_lead_and_account(
    synced: tuple[LocalStack, dict[str, str], Any],
) -> None:
    stack, ids, report = synced
    found = values(stack)
    assert [found[ids[k]] for k in ("on_contact", "on_lead", "on_account")] == \
        [value_of("Double")] * 3
    assert report["total"]["changed"]["lead"] == 1
    assert report["total"]["changed"]["account"] == 1


def test_mixed_case_and_padded_addresses_match(
    synced: tuple[LocalStack, dict[str, str], Any],
) -> None:
    stack, ids, _ = synced
    found = values(stack)
    assert found[ids["recased"]] == value_of("Single")
    assert found[ids["padded"]] == value_of("Double")


def test_quotes_plus_and_ampersand_match_exactly(
    synced: tuple[LocalStack, dict[str, str], Any],
) -> None:
    stack, ids, _ = synced
    found = values(stack)
    for name in ("quote", "plus", "amp"):
        assert found[ids[name]] == value_of("VerifiedDouble"), name
    for name in ("near_quote", "near_plus", "near_amp"):
        assert found[ids[name]] is None, name


def test_unmatched_and_malformed_addresses_are_counted_and_skipped(
    synced: tuple[LocalStack, dict[str, str], Any],
) -> None:
    stack, ids, report = synced
    assert values(stack)[ids["long_local"]] is None
    total = report["total"]
    assert total["skipped"] == {"invalid_email": 1, "unknown_opt_in": 0, "unmatched": 2}
    assert total["records_read"] == 12
    # empty, lower, on_contact, recased, padded, quote, plus, amp (+ lead, account)
    assert total["changed"] == {"contact": 8, "lead": 1, "account": 1}
    assert total["failed"] == 0
    assert report["ok"], report
