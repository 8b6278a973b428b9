"""The plan: what schema.json asks for, compared with what the environment has, item by item.

Pure: it reads the desired schema and what was found, and returns items, each with what differs
and the steps that would make it match. A difference is *safe* (adding, widening, relabelling),
*destructive* (it can lose data or break readers: a type change, removing an option in use,
shrinking a maximum length, narrowing a range; applied only with ``--allow-destructive``) or
*impossible* (provisioning cannot make it: a renamed entity set, a different primary name, other
status reasons; fixed by hand). The labels of tables and columns are set when they are created
and never compared; the labels of a global choice's options are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from provisioning import payloads
from provisioning.model import (
    DEFAULT_MAX_LENGTH,
    INT_RANGE,
    Choice,
    Column,
    DesiredSchema,
    FoundChoice,
    FoundTable,
    Table,
)
from provisioning.steps import (
    ChangeOption,
    CreateChoice,
    CreateColumn,
    CreateLookup,
    CreateTable,
    DeleteColumn,
    Step,
    UpdateColumn,
    UpdateTable,
)

Kind = Literal["choice", "table", "column", "lookup"]
Action = Literal["create", "change", "none", "skip", "refuse"]
Severity = Literal["safe", "destructive", "impossible"]
PLATFORM_COLUMNS = frozenset({"statecode", "statuscode"})
# Column kinds provisioning can create (lookups through a relationship).
CREATABLE = frozenset(payloads.ATTRIBUTE_TYPES) | {"lookup"}


@dataclass(frozen=True)
class Difference:
    text: str
    severity: Severity = "safe"
    # Only a new column makes it match (a type, a choice or a lookup target of its own):
    # the column is deleted, with its data, and created again.
    recreate: bool = False


@dataclass
class Item:
    kind: Kind
    name: str
    action: Action
    differences: list[Difference] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    note: str = ""
    # An item created by another one's step (a table's primary name column): its outcome.
    depends_on: str | None = None
    status: str = ""  # after applying: created, changed, unchanged, skipped, failed, not run
    error: str | None = None

    @property
    def destructive(self) -> bool:
        return any(d.severity == "destructive" for d in self.differences)

    @property
    def impossible(self) -> bool:
        return any(d.severity == "impossible" for d in self.differences)

    def refusal(self, allow_destructive: bool) -> str | None:
        """Why this item stops the run, or None."""
        if self.impossible:
            return "cannot be changed by provisioning: " + "; ".join(
                d.text for d in self.differences if d.severity == "impossible")
        if self.destructive and not allow_destructive:
            return "destructive, needs --allow-destructive: " + "; ".join(
                d.text for d in self.differences if d.severity == "destructive")
        return None


InUse = Callable[[str, str, int], bool]  # (table, column, value) -> some row holds it


def make_plan(desired: DesiredSchema, tables: Mapping[str, FoundTable | None],
              choices: Mapping[str, FoundChoice | None], in_use: InUse) -> list[Item]:
    """``tables`` and ``choices`` hold what was found for every table and choice of ``desired``
    (None: missing). ``in_use`` is asked only about options the environment has and the file
    does not."""
    items = [_choice_item(desired, choice, choices.get(name), tables, in_use)
             for name, choice in desired.choices.items()]
    for table in desired.tables:
        items.extend(_table_items(desired, table, tables))
    return items


# --- choices -------------------------------------------------------------------------------------
def _choice_item(desired: DesiredSchema, choice: Choice, found: FoundChoice | None,
                 tables: Mapping[str, FoundTable | None], in_use: InUse) -> Item:
    if found is None:
        return Item("choice", choice.name, "create", [Difference(
            f"{len(choice.options)} options")], [CreateChoice(choice)])
    item = Item("choice", choice.name, "none")
    have = {option.value: option for option in found.options}
    want = {option.value: option for option in choice.options}
    for option in choice.options:
        existing = have.get(option.value)
        if existing is None:
            item.differences.append(Difference(f"add option {option.value} {option.label!r}"))
            item.steps.append(ChangeOption("InsertOptionValue", choice.name, option))
        elif existing.label != option.label:
            item.differences.append(Difference(
                f"option {option.value} label {existing.label!r} -> {option.label!r}"))
            item.steps.append(ChangeOption("UpdateOptionValue", choice.name, option))
    for value, option in have.items():
        if value in want:
            continue
        users = _choice_users(desired, choice.name, tables)
        used = any(in_use(table, column, value) for table, column in users)
        severity: Severity = "destructive" if used else "safe"
        state = "in use" if used else "unused"
        item.differences.append(Difference(
            f"remove option {value} {option.label!r} ({state})", severity))
        item.steps.append(ChangeOption("DeleteOptionValue", choice.name, option))
    if item.differences:
        item.action = "change"
    return item


def _choice_users(desired: DesiredSchema, name: str,
                  tables: Mapping[str, FoundTable | None]) -> list[tuple[str, str]]:
    """(table, column) of the existing columns bound to the choice ``name``."""
    users = []
    for table in desired.tables:
        found = tables.get(table.logical_name)
        if found is None:
            continue
        for column in found.table.columns:
            if column.kind == "choice" and column.choice == name:
                users.append((table.logical_name, column.name))
    return users


# --- tables and columns --------------------------------------------------------------------------
def managed_columns(desired: DesiredSchema, table: Table) -> list[Column]:
    """The columns provisioning creates and keeps: every column of the connector's own tables
    but the ones Dataverse makes with a table, and the prefixed columns of standard tables."""
    if table.standard:
        return [c for c in table.columns if desired.is_custom_name(c.name)]
    platform = {table.primary_key, *PLATFORM_COLUMNS, *desired.system_columns}
    return [c for c in table.columns if c.name not in platform]


def _table_items(desired: DesiredSchema, table: Table,
                 tables: Mapping[str, FoundTable | None]) -> list[Item]:
    found = tables.get(table.logical_name)
    columns = managed_columns(desired, table)
    if found is None and table.standard:
        if table.requires_app:
            why = f"needs {table.requires_app}, not installed in this environment"
            return [Item("table", table.logical_name, "skip", note=why),
                    *[Item(_kind(c), f"{table.logical_name}.{c.name}", "skip", note=why)
                      for c in columns]]
        return [Item("table", table.logical_name, "refuse", [Difference(
            "missing: it is a table Dataverse ships, provisioning does not create it",
            "impossible")])]
    if found is None:
        primary = table.column(table.primary_name)
        assert primary is not None  # schema_file checks it
        items = [Item("table", table.logical_name, "create",
                      [Difference(f"entity set {table.entity_set}")],
                      [CreateTable(table, primary)])]
        if primary.kind != "string":
            items[0].differences.append(Difference(
                f"primary name {primary.name} must be a string column", "impossible"))
        for column in columns:
            if column.name == table.primary_name:
                items.append(Item("column", f"{table.logical_name}.{column.name}", "create",
                                  [Difference("primary name, created with the table")],
                                  depends_on=table.logical_name))
            else:
                items.append(_new_column(desired, table, column, tables))
        return items
    items = [_existing_table(desired, table, found)]
    for column in columns:
        existing = found.table.column(column.name)
        if existing is None:
            items.append(_new_column(desired, table, column, tables))
        else:
            items.append(_column_item(desired, table, column, existing, found, tables))
    return items


def _kind(column: Column) -> Kind:
    return "lookup" if column.kind == "lookup" else "column"


def _existing_table(desired: DesiredSchema, table: Table, found: FoundTable) -> Item:
    item = Item("table", table.logical_name, "none")
    have = found.table
    if not table.standard and have.standard:
        item.differences.append(Difference(
            "a table of the platform has this name", "impossible"))
    if have.entity_set != table.entity_set:
        item.differences.append(Difference(
            f"entity set is {have.entity_set}, not {table.entity_set}", "impossible"))
    if have.primary_name != table.primary_name:
        item.differences.append(Difference(
            f"primary name column is {have.primary_name}, not {table.primary_name}",
            "impossible"))
    if table.has_notes and not have.has_notes:
        item.differences.append(Difference("turn Notes on"))
        item.steps.append(UpdateTable(table.logical_name, found.metadata_id,
                                      payloads.updated_table(found.definition, has_notes=True)))
    managed = {c.name for c in managed_columns(desired, table)}
    platform = [c for c in table.columns
                if c.name not in managed and c.name not in desired.system_columns]
    missing = [c.name for c in platform if have.column(c.name) is None]
    if missing:
        item.differences.append(Difference(
            f"missing platform columns: {', '.join(missing)}", "impossible"))
    for column in platform:
        existing = have.column(column.name)
        if column.kind in ("state", "status") and existing is not None and existing.options:
            want = {(o.value, o.state) for o in column.options}
            got = {(o.value, o.state) for o in existing.options}
            if want != got:
                item.differences.append(Difference(
                    f"{column.name} options are {sorted(v for v, _ in got)}, not "
                    f"{sorted(v for v, _ in want)}: change status reasons in CRM",
                    "impossible"))
    if item.differences:
        item.action = "refuse" if item.impossible else "change"
    return item


def _new_column(desired: DesiredSchema, table: Table, column: Column,
                tables: Mapping[str, FoundTable | None]) -> Item:
    name = f"{table.logical_name}.{column.name}"
    kind = _kind(column)
    if column.kind not in CREATABLE or (column.kind == "lookup" and len(column.targets) != 1):
        return Item(kind, name, "refuse", [Difference(
            f"a {column.kind} column with {len(column.targets)} targets cannot be created by "
            "provisioning" if column.kind == "lookup" else
            f"a {column.kind} column cannot be created by provisioning", "impossible")])
    if column.kind == "lookup":
        target = desired.table(column.targets[0].table)
        assert target is not None  # schema_file checks targets
        if target.standard and tables.get(target.logical_name) is None:
            return Item(kind, name, "skip", note=f"its target {target.logical_name} is missing")
        navigation = column.targets[0].navigation_property
        return Item(kind, name, "create",
                    [Difference(f"lookup to {target.logical_name} ({navigation})")],
                    [CreateLookup(table.logical_name, column, target)])
    return Item(kind, name, "create", [Difference(_describe(column))],
                [CreateColumn(table.logical_name, column)])


def _describe(column: Column) -> str:
    parts = [f"choice {column.choice}" if column.choice else column.kind]
    if column.max_length is not None:
        parts.append(f"max length {column.max_length}")
    if column.required != "none":
        parts.append(f"required {column.required}")
    return ", ".join(parts)


def _column_item(desired: DesiredSchema, table: Table, column: Column, existing: Column,
                 found: FoundTable, tables: Mapping[str, FoundTable | None]) -> Item:
    name = f"{table.logical_name}.{column.name}"
    item = Item(_kind(column), name, "none")
    differences = column_differences(column, existing)
    if column.name == table.primary_name:
        # A table's primary name column cannot be deleted, so it cannot be made again.
        differences = [Difference(d.text, "impossible") if d.recreate else d
                       for d in differences]
    item.differences = differences
    if not differences:
        return item
    item.action = "refuse" if item.impossible else "change"
    if item.impossible:
        return item
    if any(d.recreate for d in differences):
        # The column and its data go, then it comes back as the file describes it.
        item.steps.append(DeleteColumn(table.logical_name, column.name,
                                       found.attribute_id(column.name)))
        replacement = _new_column(desired, table, column, tables)
        item.steps.extend(replacement.steps)
        return item
    item.steps.append(UpdateColumn(
        table.logical_name, column.name, found.attribute_id(column.name),
        payloads.updated_attribute(found.attribute_definitions[column.name], column)))
    return item


def column_differences(want: Column, have: Column) -> list[Difference]:
    """What differs between the column the file describes and the one found."""
    if want.kind != have.kind:
        severity: Severity = "destructive" if want.kind in CREATABLE else "impossible"
        return [Difference(f"type {have.kind} -> {want.kind} (recreated: its data is lost)",
                           severity, recreate=True)]
    found: list[Difference] = []
    if want.kind in ("string", "memo"):
        wanted_length = want.max_length or DEFAULT_MAX_LENGTH[want.kind]
        if have.max_length is not None and have.max_length != wanted_length:
            shrinks = wanted_length < have.max_length
            found.append(Difference(
                f"max length {have.max_length} -> {wanted_length}" + (
                    " (shrinks: longer values no longer fit)" if shrinks else ""),
                "destructive" if shrinks else "safe"))
    if want.kind == "string" and (want.format or "text") != (have.format or "text"):
        found.append(Difference(f"format {have.format or 'text'} -> {want.format or 'text'}"))
    if want.kind == "int":
        found.extend(_range_differences(want, have))
    if have.required != "system" and want.required != have.required:
        found.append(Difference(f"required {have.required} -> {want.required}"))
    if want.kind == "bool" and bool(want.default) != bool(have.default):
        found.append(Difference(f"default {bool(have.default)} -> {bool(want.default)}"))
    if want.kind == "choice":
        if want.choice != have.choice:
            current = f"choice {have.choice}" if have.choice else "options of its own"
            found.append(Difference(
                f"uses {current}, not choice {want.choice} (recreated: its data is lost)",
                "destructive", recreate=True))
        wanted_default = want.default if isinstance(want.default, int) else None
        if wanted_default != have.default:
            found.append(Difference(f"default {have.default} -> {wanted_default}"))
    if want.kind == "lookup":
        found.extend(_lookup_differences(want, have))
    return found


def _range_differences(want: Column, have: Column) -> list[Difference]:
    found = []
    low = want.min_value if want.min_value is not None else INT_RANGE[0]
    high = want.max_value if want.max_value is not None else INT_RANGE[1]
    if have.min_value is not None and low != have.min_value:
        narrows = low > have.min_value
        found.append(Difference(
            f"minimum {have.min_value} -> {low}" + (" (narrows the range)" if narrows else ""),
            "destructive" if narrows else "safe"))
    if have.max_value is not None and high != have.max_value:
        narrows = high < have.max_value
        found.append(Difference(
            f"maximum {have.max_value} -> {high}" + (" (narrows the range)" if narrows else ""),
            "destructive" if narrows else "safe"))
    return found


def _lookup_differences(want: Column, have: Column) -> list[Difference]:
    wanted = {t.table for t in want.targets}
    found_tables = {t.table for t in have.targets}
    if wanted != found_tables:
        return [Difference(f"targets {sorted(found_tables)} -> {sorted(wanted)} (recreated: "
                           "its values are lost)", "destructive", recreate=True)]
    navigation = {t.table: t.navigation_property for t in have.targets}
    found = []
    for target in want.targets:
        current = navigation.get(target.table)
        if current and current != target.navigation_property:
            found.append(Difference(
                f"navigation property {current}, not {target.navigation_property}: rename the "
                "relationship's navigation property in CRM", "impossible"))
    return found
