"""The plan's comparison of schema.json with what an environment reports (no environment)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from provisioning.model import Column, DesiredSchema, FoundChoice, FoundTable, Option, Target
from provisioning.plan import InUse, Item, make_plan
from provisioning.steps import (
    ChangeOption,
    CreateChoice,
    CreateColumn,
    CreateLookup,
    CreateTable,
    DeleteColumn,
    UpdateColumn,
    UpdateTable,
)
from tests.provisioning.builders import (
    desired,
    everything_found,
    found_table,
    nothing_found,
    raw_column,
    raw_table,
)

NEVER_USED = lambda table, column, value: False  # noqa: E731 - a fake in one line
FoundTables = dict[str, FoundTable | None]
FoundChoices = dict[str, FoundChoice | None]


def planned(schema: DesiredSchema, tables: FoundTables, choices: FoundChoices,
            in_use: InUse = NEVER_USED) -> dict[str, Item]:
    """The plan's items by name."""
    return {item.name: item for item in make_plan(schema, tables, choices, in_use)}


def with_table(name: str, *, columns: Callable[[Column], Column] | None = None,
               **changes: Any) -> tuple[DesiredSchema, FoundTables, FoundChoices]:
    """Everything found, but the table ``name`` found with ``changes`` and its columns
    passed through ``columns``."""
    schema = desired()
    tables, choices = everything_found(schema)
    table = schema.table(name)
    assert table is not None
    found_columns = [columns(c) for c in table.columns] if columns else None
    tables[name] = found_table(table, columns=found_columns, **changes)
    return schema, tables, choices


def column_item(table_name: str, name: str, **changes: Any) -> Item:
    """The plan's item for the column ``table_name.name`` found with ``changes``."""
    schema, tables, choices = with_table(
        table_name, columns=lambda c: replace(c, **changes) if c.name == name else c)
    return planned(schema, tables, choices)[f"{table_name}.{name}"]


def test_an_environment_without_the_connector_schema_gets_everything_created() -> None:
    schema = desired()
    items = planned(schema, *nothing_found(schema))
    assert items["ec_optintype"].steps == [CreateChoice(schema.choices["ec_optintype"])]
    assert items["contact"].action == "none"
    assert isinstance(items["contact.ec_optintype"].steps[0], CreateColumn)
    assert isinstance(items["ec_emailaccount"].steps[0], CreateTable)
    # The primary name comes with its table; lookups are relationships.
    assert items["ec_emailaccount.ec_name"].steps == []
    assert items["ec_emailaccount.ec_name"].depends_on == "ec_emailaccount"
    lookup = items["ec_syncschedule.ec_emailaccountid"]
    assert lookup.kind == "lookup" and isinstance(lookup.steps[0], CreateLookup)
    assert not any(item.refusal(False) for item in items.values())
    # Platform columns of the connector's tables are never sent.
    assert "ec_emailaccount.statecode" not in items and "ec_emailaccount.createdon" not in items


def test_an_environment_with_the_whole_schema_changes_nothing() -> None:
    schema = desired()
    items = make_plan(schema, *everything_found(schema), NEVER_USED)
    assert {item.action for item in items} == {"none"}
    assert all(not item.steps for item in items)


def test_a_missing_table_of_an_app_not_installed_is_skipped_with_its_columns() -> None:
    schema = desired()
    tables, choices = nothing_found(schema)
    tables["lead"] = None
    items = planned(schema, tables, choices)
    assert items["lead"].action == "skip" and "Dynamics 365 Sales" in items["lead"].note
    assert items["lead.ec_optintype"].action == "skip"
    assert items["lead"].refusal(False) is None


def test_a_missing_standard_table_is_refused_even_when_destruction_is_allowed() -> None:
    schema = desired()
    tables, choices = nothing_found(schema)
    tables["contact"] = None
    items = planned(schema, tables, choices)
    assert items["contact"].refusal(True) is not None


def test_a_longer_maximum_length_is_a_safe_update_of_the_full_definition() -> None:
    item = column_item("ec_emailaccount", "ec_apiusername", max_length=50)
    assert item.action == "change" and item.refusal(False) is None
    [step] = item.steps
    assert isinstance(step, UpdateColumn) and step.definition["MaxLength"] == 100
    assert step.definition["LogicalName"] == "ec_apiusername"  # the rest is sent back too


def test_a_shorter_maximum_length_is_destructive_and_an_update() -> None:
    item = column_item("ec_emailaccount", "ec_apiusername", max_length=200)
    assert item.destructive
    assert "needs --allow-destructive" in (item.refusal(False) or "")
    assert item.refusal(True) is None
    assert [type(step) for step in item.steps] == [UpdateColumn]


def test_a_type_change_is_destructive_and_recreates_the_column() -> None:
    item = column_item("ec_program", "ec_status", kind="memo")
    assert item.destructive and item.refusal(False)
    assert [type(step) for step in item.steps] == [DeleteColumn, CreateColumn]


def test_a_choice_column_bound_to_another_choice_is_recreated() -> None:
    item = column_item("contact", "ec_optintype", choice="ec_synctype")
    assert item.destructive
    assert [type(step) for step in item.steps] == [DeleteColumn, CreateColumn]


def test_the_primary_name_column_can_never_be_recreated() -> None:
    item = column_item("ec_emailaccount", "ec_name", kind="memo")
    assert item.impossible and item.refusal(True) is not None


def test_ranges_widen_safely_and_narrow_destructively() -> None:
    item = column_item("ec_syncschedule", "ec_windowstart", min_value=10, max_value=2000)
    severities = {d.text.split()[0]: d.severity for d in item.differences}
    assert severities == {"minimum": "safe", "maximum": "destructive"}


def test_requirement_format_and_defaults_are_safe_changes() -> None:
    item = column_item("ec_syncschedule", "ec_syncnow", default=True, required="recommended")
    assert {d.text for d in item.differences} == {"required recommended -> none",
                                                  "default True -> False"}
    assert not item.destructive and isinstance(item.steps[0], UpdateColumn)


def test_options_are_added_relabelled_and_unused_ones_removed() -> None:
    schema = desired()
    tables, choices = everything_found(schema)
    options = schema.choices["ec_syncstatus"].options
    choices["ec_syncstatus"] = FoundChoice(
        name="ec_syncstatus", metadata_id="id",
        options=(replace(options[0], label="Nothing"), options[1], Option(100000009, "Old")))
    item = planned(schema, tables, choices)["ec_syncstatus"]
    assert [(s.action, s.option.value) for s in item.steps if isinstance(s, ChangeOption)] == [
        ("UpdateOptionValue", 100000000), ("InsertOptionValue", 100000002),
        ("DeleteOptionValue", 100000009)]
    assert not item.destructive


def test_removing_an_option_in_use_is_destructive() -> None:
    schema = desired()
    tables, choices = everything_found(schema)
    options = schema.choices["ec_optintype"].options
    choices["ec_optintype"] = FoundChoice(name="ec_optintype", metadata_id="id",
                                          options=(*options, Option(100000004, "Legacy")))
    asked: list[tuple[str, str, int]] = []

    def in_use(table: str, column: str, value: int) -> bool:
        asked.append((table, column, value))
        return table == "lead"

    item = planned(schema, tables, choices, in_use)["ec_optintype"]
    assert item.destructive and "in use" in (item.refusal(False) or "")
    assert ("contact", "ec_optintype", 100000004) in asked


def test_an_entity_set_or_primary_name_of_its_own_is_refused_even_with_destruction() -> None:
    items = planned(*with_table("ec_program", entity_set="ec_programmes"))
    assert items["ec_program"].refusal(True) is not None


def test_notes_are_turned_on_when_the_file_wants_them() -> None:
    item = planned(*with_table("ec_emailsuppression", has_notes=False))["ec_emailsuppression"]
    [step] = item.steps
    assert isinstance(step, UpdateTable) and step.definition["HasNotes"] is True


def test_a_lookup_with_another_navigation_property_is_refused() -> None:
    item = column_item("ec_program", "ec_emailaccountid",
                       targets=(Target("ec_emailaccount", "ec_EmailAccountId"),))
    assert item.impossible


def test_a_lookup_to_another_table_is_recreated() -> None:
    item = column_item("ec_program", "ec_emailaccountid",
                       targets=(Target("contact", "ec_emailaccountid"),))
    assert [type(step) for step in item.steps] == [DeleteColumn, CreateLookup]


def test_status_reasons_of_their_own_are_refused() -> None:
    table = desired().table("ec_program")
    assert table is not None
    status = table.column("statuscode")
    assert status is not None
    found = with_table("ec_program", columns=lambda c: replace(
        c, options=(*c.options, Option(3, "Archived", 1))) if c.name == "statuscode" else c)
    assert planned(*found)["ec_program"].impossible


def test_a_column_the_file_adds_later_is_created_alone() -> None:
    def add(raw: dict[str, Any]) -> None:
        raw_table(raw, "ec_program")["columns"].append(
            {"name": "ec_sortorder", "type": "int", "min_value": 0})
        raw_column(raw, "ec_program", "ec_status")["max_length"] = 80

    items = planned(desired(add), *everything_found(desired()))
    assert items["ec_program.ec_sortorder"].action == "create"
    assert items["ec_program.ec_status"].action == "change"
    assert sum(1 for item in items.values() if item.action != "none") == 2


def test_column_kinds_it_cannot_create_are_refused() -> None:
    def add(raw: dict[str, Any]) -> None:
        raw_table(raw, "ec_program")["columns"].append({"name": "ec_kind", "type": "entityname"})

    item = planned(desired(add), *everything_found(desired()))["ec_program.ec_kind"]
    assert item.impossible
