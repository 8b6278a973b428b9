"""Matching under Dataverse's real string comparison (architecture §4.1), on both collations.

Dataverse filters run as SQL: case-insensitive always, accent-insensitive under ``_CI_AI`` (most
languages) and accent-sensitive under ``_CI_AS``; ``=`` ignores trailing spaces. The app must
stay exact under both: consent is never written to a record whose own address differs, and
whitespace of any kind around a stored address never hides the record.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import stack_for
from tests.e2e.org import Org, value_of

WHITESPACE_KINDS = {
    "space_before": " {}", "spaces_after": "{}  ", "spaces_around": "  {}  ",
    "tab_before": "\t{}", "tab_after": "{}\t", "nbsp_after": "{}\u00a0",
    "nbsp_before": "\u00a0{}", "newline_after": "{}\n", "crlf_after": "{}\r\n",
    "mixed_after": "{}\t ",
}


@pytest.mark.parametrize("collation", ["CI_AI", "CI_AS"])
def test_accents_are_never_confused_and_whitespace_never_hides_a_record(collation: str) -> None:
    org = Org(email_accounts=1)
    org.add_schedule(0, sync_now=True)
    # dotdigital knows the unaccented address only; CRM has both people.
    org.add_dotdigital(0, "jose@example.com", "Double")
    jose = org.add_crm("contacts", "jose@example.com")
    jose_accented = org.add_crm("contacts", "josé@example.com")
    # and the other way round: the accented one only.
    org.add_dotdigital(0, "RENEE@example.com".replace("EE", "ÉE"), "VerifiedDouble")
    renee_accented = org.add_crm("leads", "renée@example.com")
    renee = org.add_crm("leads", "renee@example.com")
    padded = {}
    for kind, pattern in WHITESPACE_KINDS.items():
        address = f"{kind.replace('_', '.')}@example.com"
        org.add_dotdigital(0, address, "Single")
        padded[kind] = org.add_crm("contacts", pattern.format(address))
    with stack_for(org.dataset()) as stack:
        stack.dataverse.configure({"collation": collation})
        assert stack.dataverse.config()["collation"] == collation
        stack.run_until_complete(timeout_s=60)
        contacts, leads = stack.values_of("contacts"), stack.values_of("leads")
    assert contacts[jose] == value_of("Double")
    assert contacts[jose_accented] is None
    assert leads[renee_accented] == value_of("VerifiedDouble")
    assert leads[renee] is None
    assert {kind: contacts[row] for kind, row in padded.items()} == \
        dict.fromkeys(WHITESPACE_KINDS, value_of("Single"))
