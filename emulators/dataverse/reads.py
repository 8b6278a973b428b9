"""GET operations: collections (through the query engine), single rows, ``$count``, a property,
and the ``sdkmessagefilters`` probe clients use to learn whether a table takes bulk messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

from emulators.dataverse import errors
from emulators.dataverse.calls import ApiCall, Outcome
from emulators.dataverse.errors import DataverseError
from emulators.dataverse.query import (
    Collation,
    QueryError,
    QueryPlan,
    TableInfo,
    parse_query,
    run_query,
)
from emulators.dataverse.resource import MAX_PAGE_SIZE, Preferences, Resource
from emulators.dataverse.rows import etag
from emulators.dataverse.schema import Table
from emulators.dataverse.security import OWNER_VALUE
from emulators.dataverse.store import Row, TableRows
from emulators.http import Response

if TYPE_CHECKING:
    from emulators.dataverse.api import DataverseApi

COUNT_CAP = 5000
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


@cache
def table_info(table: Table) -> TableInfo:
    return TableInfo(
        entity_set=table.entity_set, logical_name=table.logical_name,
        primary_key=table.primary_key, columns=table.read_columns,
    )


def plan_query(
    table: Table, params: Sequence[tuple[str, str]], collation: Collation
) -> QueryPlan:
    try:
        return parse_query(params, table_info(table), collation)
    except QueryError as failure:
        raise errors.from_query(failure) from None


def read_collection(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    plan = plan_query(
        table, parse_qsl(call.query, keep_blank_values=True), api.features.collation
    )
    owner = call.caller.owner_filter(table)
    with api.lock:
        rows = api.store.tables[table.logical_name]
        page = _run(rows, plan, prefs.page_size, owner)
        versions = [_version_of(rows, table, projected) for projected in page.rows]
    payload: dict[str, Any] = {"@odata.context": _context(api, table, plan.select)}
    if page.count is not None:
        payload["@odata.count"] = min(page.count, COUNT_CAP)
    payload["value"] = [
        {"@odata.etag": f'W/"{version}"', **projected}
        for version, projected in zip(versions, page.rows, strict=True)
    ]
    if page.next_skiptoken is not None:
        payload["@odata.nextLink"] = _next_link(api, table, call.query, page.next_skiptoken)
    headers = []
    if prefs.max_page_size is not None:
        headers.append(("Preference-Applied", f"odata.maxpagesize={prefs.page_size}"))
    return Outcome(api.json_response(200, payload, headers), read=len(page.rows))


def count_rows(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    params = [(k, v) for k, v in parse_qsl(call.query, keep_blank_values=True) if k != "$count"]
    plan = plan_query(table, [*params, ("$count", "true")], api.features.collation)
    owner = call.caller.owner_filter(table)
    with api.lock:
        rows = api.store.tables[table.logical_name]
        if plan.predicate is None and owner is None:
            total = len(rows)
        else:
            total = _run(rows, plan, 1, owner).count or 0
    body = str(min(total, COUNT_CAP)).encode("ascii")
    return Outcome(Response(200, [("Content-Type", "text/plain"), ("OData-Version", "4.0")], body))


def read_entity(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    assert resource.key is not None
    select = [(k, v) for k, v in parse_qsl(call.query, keep_blank_values=True) if k == "$select"]
    with api.lock:
        row = api.store.tables[table.logical_name].get(resource.key)
        if row is None:
            raise errors.record_not_found(table.logical_name, resource.key)
        call.caller.check_row(table, row, "Read")
        if call.headers.get("If-None-Match") == etag(row):
            return Outcome(Response.empty(304, [("OData-Version", "4.0")]), read=1)
        payload = representation(api, table, row, select, entity=True)
    return Outcome(api.json_response(200, payload), read=1)


def read_property(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    assert resource.key is not None and resource.property is not None
    column = table.column_by_read_name(resource.property)
    if column is None or resource.ref:
        raise errors.segment_not_found(resource.property)
    with api.lock:
        row = api.store.tables[table.logical_name].get(resource.key)
        if row is None:
            raise errors.record_not_found(table.logical_name, resource.key)
        call.caller.check_row(table, row, "Read")
        value = row.get(resource.property)
    if value is None:
        return Outcome(Response.empty(204, [("OData-Version", "4.0")]), read=1)
    context = f"{api.api_url}$metadata#{table.entity_set}({resource.key})/{resource.property}"
    return Outcome(api.json_response(200, {"@odata.context": context, "value": value}), read=1)


def representation(
    api: DataverseApi, table: Table, row: Row, select: Sequence[tuple[str, str]], *,
    entity: bool,
) -> dict[str, Any]:
    """A row as a single GET (or ``return=representation``) returns it; caller holds the lock."""
    plan = plan_query(table, select, api.features.collation)
    projected = run_query([row], plan, page_size=1).rows[0]
    context = _context(api, table, plan.select) + ("/$entity" if entity else "")
    return {"@odata.context": context, "@odata.etag": etag(row), **projected}


def message_filters(api: DataverseApi, call: ApiCall) -> Outcome:
    """``sdkmessagefilters?$filter=sdkmessageid/name eq @m and primaryobjecttypecode eq @t``:
    one row when the table takes that bulk message."""
    params = dict(parse_qsl(call.query, keep_blank_values=True))
    text = params.get("$filter", "")
    message = _probe_value(r"sdkmessageid/name eq (@\w+|'[^']*')", text, params)
    logical_name = _probe_value(r"primaryobjecttypecode eq (@\w+|'[^']*')", text, params)
    if message is None or logical_name is None:
        raise DataverseError(
            400, "0x80060888",
            "The emulator answers sdkmessagefilters only for the bulk message probe "
            "(sdkmessageid/name eq ... and primaryobjecttypecode eq ...).",
        )
    supported = (
        message in BULK_MESSAGES and logical_name in api.schema.tables
        and logical_name not in api.hidden_tables
        and logical_name not in api.features.bulk_unsupported_tables
    )
    rows = []
    if supported:
        key = api.stable_id("sdkmessagefilter", message, logical_name)
        rows.append({"sdkmessagefilterid": key})
    context = f"{api.api_url}$metadata#sdkmessagefilters(sdkmessagefilterid)"
    return Outcome(api.json_response(200, {"@odata.context": context, "value": rows}))


def _probe_value(pattern: str, text: str, params: dict[str, str]) -> str | None:
    found = re.search(pattern, text)
    if found is None:
        return None
    literal = found.group(1)
    if literal.startswith("@"):
        literal = params.get(literal, "")
    return literal[1:-1] if len(literal) >= 2 and literal[0] == literal[-1] == "'" else None


def _run(rows: TableRows, plan: QueryPlan, page_size: int, owner: str | None = None) -> Any:
    """Run ``plan`` over the rows the caller may see: all, or those ``owner`` owns."""
    source: Iterable[Row] = rows.rows.values()
    hinted = False
    # A plan made just before a collation change holds keys the index no longer uses: scan.
    if plan.index_hint is not None and plan.collation == rows.collation:
        column, values = plan.index_hint
        candidates = rows.candidates(column, values)
        if candidates is not None:
            source, hinted = candidates, True
    if owner is not None:
        if hinted:
            source = [row for row in source if row.get(OWNER_VALUE) == owner]
        else:
            owned = rows.candidates(OWNER_VALUE, [owner])
            source = owned if owned is not None else [
                row for row in source if row.get(OWNER_VALUE) == owner
            ]
    return run_query(source, plan, page_size=min(page_size, MAX_PAGE_SIZE))


def _version_of(rows: TableRows, table: Table, projected: Row) -> Any:
    stored = rows.get(projected[table.primary_key])
    return stored["versionnumber"] if stored is not None else projected.get("versionnumber")


def _context(api: DataverseApi, table: Table, select: Sequence[str] | None) -> str:
    columns = f"({','.join(select)})" if select else ""
    return f"{api.api_url}$metadata#{table.entity_set}{columns}"


def _next_link(api: DataverseApi, table: Table, raw_query: str, token: str) -> str:
    # The client's own encoding is kept: only an earlier $skiptoken is replaced.
    kept = [
        part for part in raw_query.split("&")
        if part and unquote(part.split("=", 1)[0]) != "$skiptoken"
    ]
    kept.append(f"$skiptoken={quote(token, safe='')}")
    return f"{api.api_url}{table.entity_set}?{'&'.join(kept)}"
