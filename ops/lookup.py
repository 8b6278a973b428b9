"""An email account named on the command line, by its name or its row id."""

from __future__ import annotations

from collections.abc import Sequence

from ops.crm import AccountRow
from ops.errors import UsageError


def find_account(rows: Sequence[AccountRow], text: str) -> AccountRow:
    """The account whose ``ec_emailaccountid`` or name (case-insensitive) is ``text``; a
    deactivated one is refused, since the connector does not sync it."""
    wanted = text.strip().casefold()
    by_id = [row for row in rows if row.account.row_id.casefold() == wanted]
    found = by_id or [row for row in rows if row.account.name.strip().casefold() == wanted]
    if not found:
        known = ", ".join(describe(row) for row in rows) or "none is configured in CRM"
        raise UsageError(f"unknown email account {text!r}; known: {known}")
    if len(found) > 1:
        raise UsageError(f"{len(found)} email accounts are named {text!r}: name one by its id "
                         f"({', '.join(row.account.row_id for row in found)})")
    row = found[0]
    if not row.active:
        raise UsageError(f"email account {describe(row)} is deactivated in CRM: the connector "
                         "does not sync it (activate it first)")
    return row


def describe(row: AccountRow) -> str:
    return f"{row.account.name or '(no name)'} ({row.account.row_id})"
