"""In-memory ``CrmPrograms``: ``ec_program`` rows with the Dataverse adapter's behaviour.

A new row's id follows from the account and the program, as the adapter's does, so creating a
row that exists fails the whole plan with ``PreconditionFailed`` (nothing written), as the
adapter's change set does. Reads and writes are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.domain.programs import ProgramRow, ProgramsPlan, enabled_for_users
from shared.errors import AppError, NotFound, PreconditionFailed, System


@dataclass(frozen=True)
class StoredProgram:
    account_id: str
    row: ProgramRow


def row_id_for(account_id: str, program_id: int) -> str:
    return f"program-{account_id}-{program_id}"


class InMemoryCrmPrograms:
    def __init__(self) -> None:
        self.stored: dict[str, StoredProgram] = {}
        self.reads = 0
        self.writes: list[ProgramsPlan] = []
        self.write_failure: AppError | None = None
        self.before_write: list[ProgramsPlan] = []  # plans seen, written or not

    # Seeding and playing the administrator's side.
    def add(self, account_id: str, row: ProgramRow) -> None:
        self.stored[row.row_id] = StoredProgram(account_id, row)

    def set_enabled(self, row_id: str, enabled: bool) -> None:
        stored = self.stored[row_id]
        self.stored[row_id] = replace(stored, row=replace(stored.row, enabled=enabled))

    def row(self, row_id: str) -> ProgramRow:
        return self.stored[row_id].row

    def of(self, account_id: str) -> dict[int, ProgramRow]:
        """The account's rows by program id (tests without duplicates)."""
        return {s.row.program_id: s.row for s in self.stored.values()
                if s.account_id == account_id}

    # CrmPrograms.
    def rows(self, account_id: str) -> list[ProgramRow]:
        self.reads += 1
        return [s.row for s in self.stored.values() if s.account_id == account_id]

    def apply(self, account_id: str, plan: ProgramsPlan) -> None:
        self.before_write.append(plan)
        if self.write_failure is not None:
            raise self.write_failure
        created = {row_id_for(account_id, new.program_id): new for new in plan.create}
        if any(row_id in self.stored for row_id in created):
            raise PreconditionFailed(System.DATAVERSE, "a record with this id already exists",
                                     status=412)
        if any(change.row_id not in self.stored for change in plan.change):
            raise NotFound(System.DATAVERSE, "a changed row does not exist", status=404)
        for row_id, new in created.items():
            self.add(account_id, ProgramRow(row_id, new.program_id, new.name, new.status,
                                            enabled=False, active=True))
        for change in plan.change:
            stored = self.stored[change.row_id]
            row = stored.row
            row = replace(
                row,
                name=row.name if change.name is None else change.name,
                status=row.status if change.status is None else change.status,
                active=row.active if change.active is None else change.active,
            )
            self.stored[change.row_id] = replace(stored, row=row)
        self.writes.append(plan)

    def enabled_programs(self, account_id: str) -> list[ProgramRow]:
        self.reads += 1
        return enabled_for_users(s.row for s in self.stored.values()
                                 if s.account_id == account_id)
