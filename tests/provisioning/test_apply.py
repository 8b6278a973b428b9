"""Applying a plan: order of the requests, a failure that stops the run, publishing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from provisioning.apply import apply_plan
from provisioning.metadata_api import MetadataApi
from provisioning.model import FoundChoice
from provisioning.plan import make_plan
from shared.errors import BadRequest, System
from tests.provisioning.builders import desired, nothing_found


class FakeApi:
    """Records the calls; ``fail_on`` makes the call whose description contains it fail."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on
        self.solution: str | None = "ecdotdigitalconnector"
        self.published: tuple[list[str], list[str]] | None = None

    def _record(self, text: str) -> None:
        self.calls.append(text)
        if self.fail_on and self.fail_on in text:
            raise BadRequest(System.DATAVERSE, "refused", status=400, operation=text)

    def create_choice(self, body: Mapping[str, Any]) -> None:
        self._record(f"choice {body['Name']}")

    def option_action(self, action: str, body: Mapping[str, Any]) -> None:
        self._record(f"{action} {body['OptionSetName']}")

    def create_table(self, body: Mapping[str, Any]) -> None:
        self._record(f"table {body['SchemaName']}")

    def create_attribute(self, table: str, body: Mapping[str, Any]) -> None:
        self._record(f"column {table}.{body['SchemaName']}")

    def create_relationship(self, body: Mapping[str, Any]) -> None:
        self._record(f"lookup {body['ReferencingEntity']}.{body['Lookup']['SchemaName']}")

    def choice(self, name: str) -> FoundChoice:
        return FoundChoice(name=name, metadata_id=f"id-{name}", options=())

    def publish(self, tables: list[str], choices: list[str]) -> None:
        self.published = (tables, choices)


def test_steps_run_choices_then_tables_then_columns_then_lookups_and_publish() -> None:
    schema = desired()
    items = make_plan(schema, *nothing_found(schema), lambda *_: False)
    api = FakeApi()
    assert apply_plan(items, cast(MetadataApi, api), schema, lambda _: None)
    kinds = [call.split()[0] for call in api.calls]
    assert kinds == sorted(kinds, key=["choice", "table", "column", "lookup"].index)
    assert "column contact.ec_OptInType" in api.calls
    assert api.published is not None and "ec_emailaccount" in api.published[0]
    statuses = {item.name: item.status for item in items}
    assert statuses["ec_emailaccount"] == "created"
    assert statuses["ec_emailaccount.ec_name"] == "created"
    assert statuses["contact"] == "unchanged"


def test_a_failed_step_stops_the_run_and_says_what_did_not_run() -> None:
    schema = desired()
    items = make_plan(schema, *nothing_found(schema), lambda *_: False)
    api = FakeApi(fail_on="table ec_syncschedule")
    lines: list[str] = []
    assert not apply_plan(items, cast(MetadataApi, api), schema, lines.append)
    statuses = {item.name: item.status for item in items}
    assert statuses["ec_emailaccount"] == "created"
    assert statuses["ec_syncschedule"] == "failed"
    assert statuses["ec_syncschedule.ec_name"] == "not run"
    assert statuses["ec_program"] == "not run"
    assert statuses["contact.ec_optintype"] == "not run"
    failed = next(item for item in items if item.status == "failed")
    assert failed.error is not None and "refused" in failed.error
    assert any(line.startswith("[") and "/" in line for line in lines)
    # What was created is published, so it is usable.
    assert api.published is not None
