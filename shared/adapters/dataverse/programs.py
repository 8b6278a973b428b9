"""Program rows (``ec_program``) in Dataverse: the ``CrmPrograms`` port.

An account's rows are one query (every state, every page); a plan is one ``$batch`` change set
(``DataverseClient.write_atomically``): new rows as one ``CreateMultiple``, changes as one
``UpdateMultiple``, all or nothing. A new row's id follows from the account and the program, so
two refreshes racing (the timer and a forced one) can never create two rows of one program: the
second change set fails whole on the existing id and is planned again from what is there.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from shared.adapters.dataverse.change_sets import CREATE, UPDATE, Group
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.odata import guid_literal
from shared.adapters.dataverse.records import CrmTable
from shared.adapters.dataverse.suppression_rows import ACTIVE, INACTIVE, write
from shared.domain.programs import (
    NewProgramRow,
    ProgramRow,
    ProgramRowChange,
    ProgramsPlan,
    enabled_for_users,
)

logger = logging.getLogger(__name__)

ACCOUNT_COLUMN = "_ec_emailaccountid_value"
PROGRAM_ID_COLUMN = "ec_dotdigitalprogramid"
ENABLED_COLUMN = "ec_enabled"
PROGRAMS = CrmTable(
    "ec_program", "ec_programs", "ec_programid",
    columns=(PROGRAM_ID_COLUMN, "ec_name", "ec_status", ENABLED_COLUMN, "statecode"),
)
SELECT = (PROGRAMS.primary_key, *PROGRAMS.columns)

_IDS = uuid.UUID("0b6f3a1e-7d2c-4f58-9e43-8a5c1d27b690")


def row_id_for(account_id: str, program_id: int) -> str:
    """The id of the row that mirrors ``program_id`` for an account (see the module's text)."""
    return str(uuid.uuid5(_IDS, f"program|{guid_literal(account_id)}|{program_id}"))


def program_row(row: dict[str, Any]) -> ProgramRow | None:
    """The row as the domain's value; None for a row without a dotdigital program id."""
    program_id = row.get(PROGRAM_ID_COLUMN)
    if isinstance(program_id, bool) or not isinstance(program_id, int):
        return None
    status = row.get("ec_status")
    name = row.get("ec_name")
    return ProgramRow(
        row_id=str(row[PROGRAMS.primary_key]),
        program_id=program_id,
        # Kept as stored (not trimmed) so the rules see, and correct, a value edited by hand.
        name=name if isinstance(name, str) else "",
        status=status if isinstance(status, str) else "",
        enabled=row.get(ENABLED_COLUMN) is True,
        active=row.get("statecode") == ACTIVE[0],
    )


def plan_groups(account_id: str, plan: ProgramsPlan) -> list[Group]:
    """The plan as one group: a refresh's writes stand or fall together."""
    account = f"/ec_emailaccounts({guid_literal(account_id)})"
    creates = [_create_row(account_id, account, row) for row in plan.create]
    changes = [_change_row(change) for change in plan.change]
    group = []
    if creates:
        group.append(write(CREATE, PROGRAMS, creates))
    if changes:
        group.append(write(UPDATE, PROGRAMS, changes))
    return [group] if group else []


def _create_row(account_id: str, account: str, row: NewProgramRow) -> dict[str, Any]:
    state, status = ACTIVE
    return {
        PROGRAMS.primary_key: row_id_for(account_id, row.program_id),
        PROGRAM_ID_COLUMN: row.program_id,
        "ec_name": row.name,
        "ec_status": row.status,
        # Disabled until an administrator offers it to CRM users.
        ENABLED_COLUMN: False,
        "statecode": state,
        "statuscode": status,
        "ec_emailaccountid@odata.bind": account,
    }


def _change_row(change: ProgramRowChange) -> dict[str, Any]:
    """Only the columns the change sets; ``ec_enabled`` never (the administrator's)."""
    row: dict[str, Any] = {PROGRAMS.primary_key: guid_literal(change.row_id)}
    if change.name is not None:
        row["ec_name"] = change.name
    if change.status is not None:
        row["ec_status"] = change.status
    if change.active is not None:
        row["statecode"], row["statuscode"] = ACTIVE if change.active else INACTIVE
    return row


class DataverseCrmPrograms:
    def __init__(self, client: DataverseClient) -> None:
        self._client = client

    def rows(self, account_id: str) -> list[ProgramRow]:
        return self._rows(f"{ACCOUNT_COLUMN} eq {guid_literal(account_id)}")

    def apply(self, account_id: str, plan: ProgramsPlan) -> None:
        groups = plan_groups(account_id, plan)  # checks every id before anything is sent
        if not groups:
            return
        self._client.write_atomically(groups)
        logger.info("account=%s programs written: %d created, %d updated, %d deactivated",
                    account_id, len(plan.create), plan.updated, plan.deactivated)

    def enabled_programs(self, account_id: str) -> list[ProgramRow]:
        rows = self._rows(
            f"{ACCOUNT_COLUMN} eq {guid_literal(account_id)} and {ENABLED_COLUMN} eq true "
            f"and statecode eq {ACTIVE[0]} and {PROGRAM_ID_COLUMN} ne null"
        )
        # The query already chose them; the rule also orders them for the dialog.
        return enabled_for_users(rows)

    def _rows(self, condition: str) -> list[ProgramRow]:
        found = []
        for row in self._client.iter_rows(PROGRAMS.entity_set, select=SELECT, filter=condition):
            program = program_row(row)
            if program is None:
                # Made by hand without a program: nothing the mirror or the dialog can use.
                logger.debug("program row %s has no dotdigital id: ignored",
                             row.get(PROGRAMS.primary_key))
                continue
            found.append(program)
        return found
