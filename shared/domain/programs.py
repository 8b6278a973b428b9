"""The Programs mirror's rules: which ``ec_program`` rows to create, change or deactivate so an
email account's rows follow its dotdigital programs. Pure: standard library only, no I/O.

dotdigital owns a program's name and status; the administrator owns *Enabled for CRM users*
(``ec_enabled``), so the mirror never writes it except as ``False`` on a new row: a program
appears in the enrolment dialog only once someone has chosen to offer it. Rows are never
deleted: a program gone from dotdigital leaves an inactive row, so the administrator's choice
survives should the program come back (dotdigital can recover a deleted program, as ReadOnly).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Column sizes of ``ec_program`` (the schema): a longer text would fail the write, and values
# are compared as they will be stored, or a long name would be rewritten on every refresh.
NAME_LENGTH = 200
STATUS_LENGTH = 50


@dataclass(frozen=True, slots=True)
class PlatformProgram:
    """A program as dotdigital lists it (``ApiProgram``)."""

    program_id: int
    name: str
    status: str  # Draft | Active | Deactivated | ReadOnly | NotAvailableInThisVersion


@dataclass(frozen=True, slots=True)
class ProgramRow:
    """An ``ec_program`` row as read (a row without a dotdigital id, made by hand, is none of
    the mirror's and is not read). ``status`` is blank when the row has none."""

    row_id: str
    program_id: int
    name: str
    status: str
    enabled: bool
    active: bool


@dataclass(frozen=True, slots=True)
class NewProgramRow:
    program_id: int
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class ProgramRowChange:
    """The columns to write on an existing row; None leaves a column as it is."""

    row_id: str
    name: str | None = None
    status: str | None = None
    active: bool | None = None

    @property
    def deactivates(self) -> bool:
        return self.active is False


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Rows with the same dotdigital program id: ``kept`` is mirrored, ``left`` are not touched."""

    program_id: int
    kept: str
    left: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProgramsPlan:
    create: tuple[NewProgramRow, ...] = ()
    change: tuple[ProgramRowChange, ...] = ()
    unchanged: int = 0
    duplicates: tuple[Duplicate, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.create and not self.change

    @property
    def deactivated(self) -> int:
        return sum(1 for change in self.change if change.deactivates)

    @property
    def updated(self) -> int:
        """Rows whose name or status changed, or that became active again."""
        return len(self.change) - self.deactivated


def stored_name(program: PlatformProgram) -> str:
    """The name as the row holds it: trimmed, clipped to the column, never blank (the column is
    required; dotdigital's names are 1..255 characters, but a blank one must not fail a write)."""
    name = program.name.strip()[:NAME_LENGTH].rstrip()
    return name or f"Program {program.program_id}"


def stored_status(program: PlatformProgram) -> str:
    return program.status.strip()[:STATUS_LENGTH]


def plan_programs(
    programs: Iterable[PlatformProgram], rows: Iterable[ProgramRow]
) -> ProgramsPlan:
    """The writes that make one account's rows mirror its programs (nothing when none differ).

    - A program without a row gets one, disabled, with dotdigital's name and status.
    - A row of a listed program takes its name and status, and is reactivated if inactive;
      ``ec_enabled`` is never written.
    - An active row whose program is no longer listed is deactivated, never deleted.
    - Several rows of one program (an administrator's copy): one is kept (``keeper``), the
      others are left as they are and reported in ``duplicates``.

    A program listed twice (a page boundary shifting while dotdigital's list changed) counts
    once, with its last listing.
    """
    listed = {program.program_id: program for program in programs}
    by_program: dict[int, list[ProgramRow]] = {}
    for row in rows:
        by_program.setdefault(row.program_id, []).append(row)

    create: list[NewProgramRow] = []
    change: list[ProgramRowChange] = []
    duplicates: list[Duplicate] = []
    unchanged = 0
    for program_id in sorted(listed.keys() | by_program.keys()):
        program = listed.get(program_id)
        candidates = by_program.get(program_id, [])
        if not candidates:
            assert program is not None
            create.append(NewProgramRow(program_id, stored_name(program), stored_status(program)))
            continue
        row = keeper(candidates)
        if len(candidates) > 1:
            left = tuple(sorted(other.row_id for other in candidates if other is not row))
            duplicates.append(Duplicate(program_id, row.row_id, left))
        wanted = _change_for(row, program)
        if wanted is None:
            unchanged += 1
        else:
            change.append(wanted)
    return ProgramsPlan(tuple(create), tuple(change), unchanged, tuple(duplicates))


def keeper(rows: Sequence[ProgramRow]) -> ProgramRow:
    """The row mirrored among several of one program: an active one before an inactive one
    (the one CRM users see), then the lowest row id, so every refresh picks the same row."""
    return min(rows, key=lambda row: (not row.active, row.row_id))


def _change_for(row: ProgramRow, program: PlatformProgram | None) -> ProgramRowChange | None:
    if program is None:
        # Gone from dotdigital: deactivated once; its name and status stay as last seen.
        return ProgramRowChange(row.row_id, active=False) if row.active else None
    name, status = stored_name(program), stored_status(program)
    change = ProgramRowChange(
        row.row_id,
        name=name if row.name != name else None,
        status=status if row.status != status else None,
        active=True if not row.active else None,
    )
    if change.name is None and change.status is None and change.active is None:
        return None
    return change


def enabled_for_users(rows: Iterable[ProgramRow]) -> list[ProgramRow]:
    """The rows CRM users may choose from: enabled by an administrator and active; by name,
    then program id, so the order is stable."""
    chosen = [row for row in rows if row.enabled and row.active]
    return sorted(chosen, key=lambda row: (row.name.casefold(), row.program_id))
