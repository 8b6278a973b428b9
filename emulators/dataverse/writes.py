"""POST, PATCH (update or upsert), DELETE, and single-property PUT/DELETE.

Every write checks the whole body first (``payload.decode``) and stores one new row, so a rejected
request changes nothing. ``apply_create``/``apply_update`` are shared with the bulk messages.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from emulators.dataverse import errors
from emulators.dataverse.calls import ApiCall, Outcome
from emulators.dataverse.payload import decode, now_text
from emulators.dataverse.reads import representation
from emulators.dataverse.resource import Preferences, Resource
from emulators.dataverse.rows import etag, new_row, updated_row
from emulators.dataverse.schema import Table
from emulators.dataverse.security import OWNER_COLUMN, OWNER_VALUE
from emulators.dataverse.store import Row
from emulators.http import Response

if TYPE_CHECKING:
    from emulators.dataverse.api import DataverseApi


def read_json(call: ApiCall, table: Table) -> Any:
    try:
        return json.loads(call.body.decode("utf-8")) if call.body else {}
    except (UnicodeDecodeError, ValueError):
        raise errors.payload_error(
            table.entity_set, "Microsoft.OData.ODataException: Invalid JSON. The payload could "
            "not be read as a JSON object.",
        ) from None


def create(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    body = read_json(call, table)
    with api.lock:
        values = decode(body, api.write_rules(table, call))
        key = values.pop(table.primary_key, None) or str(uuid.uuid4())
        if api.row_exists(table.logical_name, key):
            raise errors.duplicate_record()
        row = apply_create(api, table, values, key, owner=call.caller.principal_id)
        if prefs.return_representation:
            payload = representation(api, table, row, _select(call), entity=True)
    path = f"{table.entity_set}({key})"
    if prefs.return_representation:
        return Outcome(api.json_response(201, payload), written=1, entity_path=path)
    return Outcome(_no_content(api, path), written=1, entity_path=path)


def upsert(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    assert resource.key is not None
    key = resource.key
    body = read_json(call, table)
    if_match = call.headers.get("If-Match")
    if_none_match = call.headers.get("If-None-Match")
    with api.lock:
        existing = api.store.tables[table.logical_name].get(key)
        if existing is None and if_match is not None:
            raise errors.record_not_found(table.logical_name, key)
        if existing is not None:
            call.caller.check_row(table, existing, "Write")
        if existing is not None and if_match not in (None, "*") and if_match != etag(existing):
            raise errors.version_mismatch()
        if existing is not None and if_none_match == "*":
            raise errors.duplicate_record()
        values = decode(body, api.write_rules(table, call))
        body_key = values.pop(table.primary_key, None)
        if body_key is not None and body_key != key:
            raise errors.invalid_argument(
                f"The {table.primary_key} in the payload does not match the key in the URL."
            )
        if existing is None:
            row = apply_create(api, table, values, key, owner=call.caller.principal_id)
        else:
            row = apply_update(api, table, existing, values)
        if prefs.return_representation:
            payload = representation(api, table, row, _select(call), entity=True)
    path = f"{table.entity_set}({key})"
    if prefs.return_representation:
        status = 201 if existing is None else 200
        return Outcome(api.json_response(status, payload), written=1, entity_path=path)
    return Outcome(_no_content(api, path), written=1, entity_path=path)


def delete(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    assert resource.key is not None
    if_match = call.headers.get("If-Match")
    with api.lock:
        existing = api.store.tables[table.logical_name].get(resource.key)
        if existing is None:
            raise errors.record_not_found(table.logical_name, resource.key)
        call.caller.check_row(table, existing, "Delete")
        if if_match not in (None, "*") and if_match != etag(existing):
            raise errors.version_mismatch()
        api.store.remove(table.logical_name, resource.key)
    return Outcome(Response.empty(204, [("OData-Version", "4.0")]), written=1)


def put_property(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    body = read_json(call, table)
    if not isinstance(body, dict) or set(body) != {"value"} or resource.ref:
        raise errors.payload_error(
            table.entity_set,
            "Microsoft.OData.ODataException: A single property is written as {\"value\": ...}.",
        )
    return _set_property(api, table, resource, call, body["value"])


def delete_property(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    assert resource.property is not None
    if resource.ref:
        # DELETE .../<navigation property>/$ref clears a single-valued lookup.
        if resource.property not in table.navigation:
            raise errors.segment_not_found(resource.property)
        return _write_values(api, table, resource, call, {f"{resource.property}@odata.bind": None})
    return _set_property(api, table, resource, call, None)


def apply_create(
    api: DataverseApi, table: Table, values: dict[str, Any], key: str, *, owner: str
) -> Row:
    """Store a new row owned by ``owner`` (the creator's systemuserid, on user-owned tables);
    caller holds the lock and has checked the key is free."""
    if OWNER_COLUMN in table.columns:
        values = {**values, OWNER_VALUE: owner}
    now = now_text(api.clock.now())
    row = new_row(table, values, key=key, now=now, version=api.store.next_version())
    api.store.put(table.logical_name, row)
    return row


def apply_update(api: DataverseApi, table: Table, existing: Row, values: dict[str, Any]) -> Row:
    now = now_text(api.clock.now())
    row = updated_row(table, existing, values, now=now, version=api.store.next_version())
    api.store.put(table.logical_name, row)
    return row


def _set_property(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, value: Any
) -> Outcome:
    assert resource.property is not None
    column = table.columns.get(resource.property)
    if column is None or column.type == "lookup" or resource.ref:
        raise errors.segment_not_found(resource.property)
    return _write_values(api, table, resource, call, {resource.property: value})


def _write_values(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, body: dict[str, Any]
) -> Outcome:
    assert resource.key is not None
    with api.lock:
        existing = api.store.tables[table.logical_name].get(resource.key)
        if existing is None:
            raise errors.record_not_found(table.logical_name, resource.key)
        call.caller.check_row(table, existing, "Write")
        values = decode(body, api.write_rules(table, call))
        apply_update(api, table, existing, values)
    return Outcome(Response.empty(204, [("OData-Version", "4.0")]), written=1)


def _select(call: ApiCall) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(call.query, keep_blank_values=True) if k == "$select"]


def _no_content(api: DataverseApi, path: str) -> Response:
    return Response.empty(
        204, [("OData-Version", "4.0"), ("OData-EntityId", f"{api.api_url}{path}")]
    )
