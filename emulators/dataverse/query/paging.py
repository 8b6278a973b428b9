"""Runs a plan over rows: filter, stable order, resume after a skip token, page, project.

The skip token looks like the service's: ``<cookie pagenumber="2" pagingcookie="..."
istracking="False" />`` whose ``pagingcookie`` is a URL-encoded inner cookie naming the last row
of the previous page by its sort key, one element per ordered column plus the primary key
(``<contactid last="{GUID}" first="{GUID}" />``). Resuming strictly after that key, rather than
at an offset, means rows inserted between pages are neither repeated nor shift others.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import heapq
import json
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any
from urllib.parse import quote, unquote

from emulators.dataverse.query.errors import QueryError
from emulators.dataverse.query.model import QueryPage, QueryPlan
from emulators.dataverse.query.values import normalizer

COUNT_LIMIT = 5000
TOP_LIMIT = 5000

SortKey = tuple[tuple[bool, Any], ...]
_OUTER = re.compile(
    r'<cookie pagenumber="(\d+)" pagingcookie="(.*)" istracking="(?:True|False)" />', re.DOTALL
)
_INNER = re.compile(r'<cookie page="(\d+)" hash="([0-9a-f]{16})">(.*)</cookie>', re.DOTALL)
_ELEMENT = re.compile(r'<([A-Za-z_]\w*) last="([^"]*)" first="([^"]*)" />')
_BRACED_GUID = re.compile(r"\{([0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12})\}")
_HASH_KEY = b"dataverse-emulator-paging-cookie"


def _guid_order(value: Any) -> str:
    # Lexical order of the lower-case text: cheap, and clients must not rely on GUID order
    # (SQL Server's byte-group order is not reproduced).
    return value.lower() if isinstance(value, str) else str(value).lower()


def _key_function(column_type: str, plan: QueryPlan) -> Callable[[Any], Any]:
    # Strings sort by their collation order form, so values equal under the collation are ties
    # (the primary key, always the last sort column, orders them).
    if column_type == "guid":
        return _guid_order
    return normalizer(column_type, plan.collation, ordered=True)


def _sort_columns(plan: QueryPlan) -> list[tuple[str, bool]]:
    primary_key = plan.table.primary_key
    columns = list(plan.orderby)
    if all(name != primary_key for name, _ in columns):
        columns.append((primary_key, False))
    return columns


def _key_of(row: Mapping[str, Any], columns: list[tuple[str, Callable[[Any], Any]]]) -> SortKey:
    key: list[tuple[bool, Any]] = []
    for name, to_key in columns:
        value = row.get(name)
        key.append((False, None) if value is None else (True, to_key(value)))
    return tuple(key)


def run_query(rows: Iterable[Mapping[str, Any]], plan: QueryPlan, *, page_size: int) -> QueryPage:
    """One page of the query's results, with the token for the next page and the count.

    ``$top`` returns at most that many rows (capped at 5,000) without a next page; otherwise
    pages hold ``page_size`` rows. Rows are copies, projected to ``$select`` plus the primary key
    (and any ``@``-prefixed annotations the row carries).

    Raises:
        QueryError: the plan's skip token was tampered with.
    """
    if page_size < 1:
        raise ValueError("page_size must be positive")
    predicate = plan.predicate
    matches = list(rows) if predicate is None else [row for row in rows if predicate(row)]
    count = min(len(matches), COUNT_LIMIT) if plan.count else None

    page_number, last = 1, None
    if plan.skiptoken is not None:
        page_number, last = read_skiptoken(plan.skiptoken, plan)
    limit = min(plan.top, TOP_LIMIT) if plan.top is not None else page_size
    if plan.orderby:
        ordered = _ordered_by_columns(matches, plan, last, limit + 1)
    else:
        ordered = _ordered_by_primary_key(matches, plan, last, limit + 1)
    page, more = ordered[:limit], len(ordered) > limit and plan.top is None
    next_token = None
    if more and page:
        next_token = _write_skiptoken(page_number + 1, page[0][1], page[-1][1], plan)
    projected = [_project(row, plan) for _, row in page]
    return QueryPage(rows=projected, next_skiptoken=next_token, count=count)


def _ordered_by_primary_key(
    matches: list[Mapping[str, Any]], plan: QueryPlan, last: SortKey | None, n: int
) -> list[tuple[Any, Mapping[str, Any]]]:
    # The default order, and the one full syncs page through: one string key per row, so the
    # per-page scan stays in C-level comparisons.
    # Stored keys are canonical lower-case GUID text, so they compare as they are.
    primary_key = plan.table.primary_key
    candidates = matches
    if last is not None:
        after = last[0][1]
        candidates = [row for row in matches if row[primary_key] > after]
    by_key = itemgetter(primary_key)
    if n < len(candidates) // 4:
        chosen = heapq.nsmallest(n, candidates, key=by_key)
    else:
        chosen = sorted(candidates, key=by_key)[:n]
    return [(row[primary_key], row) for row in chosen]


def _ordered_by_columns(
    matches: list[Mapping[str, Any]], plan: QueryPlan, last: SortKey | None, n: int
) -> list[tuple[Any, Mapping[str, Any]]]:
    sort_columns = _sort_columns(plan)
    key_columns = [
        (name, _key_function(plan.table.columns[name], plan)) for name, _ in sort_columns
    ]
    descending = [desc for _, desc in sort_columns]
    keyed = [(_key_of(row, key_columns), row) for row in matches]
    if last is not None:
        keyed = [entry for entry in keyed if _is_after(entry[0], last, descending)]
    return _first(keyed, n, descending)


def _is_after(key: SortKey, last: SortKey, descending: list[bool]) -> bool:
    for component, last_component, desc in zip(key, last, descending, strict=True):
        if component != last_component:
            return (component > last_component) != desc
    return False


def _first(
    keyed: list[tuple[SortKey, Mapping[str, Any]]], n: int, descending: list[bool]
) -> list[tuple[SortKey, Mapping[str, Any]]]:
    by_key = itemgetter(0)
    if all(descending) or not any(descending):
        reverse = descending[0]
        if n < len(keyed) // 4:
            pick = heapq.nlargest if reverse else heapq.nsmallest
            return pick(n, keyed, key=by_key)
        return sorted(keyed, key=by_key, reverse=reverse)[:n]
    ordered = list(keyed)
    # Mixed directions: stable sorts from the last column to the first.
    for index in reversed(range(len(descending))):
        ordered.sort(key=_component(index), reverse=descending[index])
    return ordered[:n]


def _component(index: int) -> Callable[[tuple[SortKey, Mapping[str, Any]]], Any]:
    return lambda entry: entry[0][index]


def _project(row: Mapping[str, Any], plan: QueryPlan) -> dict[str, Any]:
    table = plan.table
    names = table.columns if plan.select is None else plan.select
    projected = {name: row.get(name) for name in names}
    projected.setdefault(table.primary_key, row.get(table.primary_key))
    for name, value in row.items():
        if name.startswith("@"):
            projected[name] = value
    return projected


def _encode_value(value: Any) -> str:
    if isinstance(value, dt.date):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_value(text: str, column_type: str, plan: QueryPlan) -> Any:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    value = json.loads(raw)
    if column_type in {"datetime", "dateonly"}:
        return normalizer(column_type, plan.collation)(value)
    if isinstance(value, list):  # a CI_AS string order form, a tuple before JSON
        return tuple(value)
    if column_type in {"decimal", "money"}:
        return Decimal(value) if isinstance(value, str) else value
    return value


def _element_value(name: str, row: Mapping[str, Any], plan: QueryPlan) -> str:
    value = row.get(name)
    if name == plan.table.primary_key:
        return "{" + str(value).upper() + "}"
    kind = plan.table.columns[name]
    return _encode_value(None if value is None else _key_function(kind, plan)(value))


def _signature(page: str, body: str, plan: QueryPlan) -> str:
    # String positions are collation keys: a token from before a collation change cannot resume.
    text = f"{page}|{plan.collation.name}|{body}"
    digest = hashlib.blake2s(text.encode(), key=_HASH_KEY, digest_size=8)
    return digest.hexdigest()


def _write_skiptoken(
    page_number: int, first: Mapping[str, Any], last: Mapping[str, Any], plan: QueryPlan
) -> str:
    body = "".join(
        f'<{name} last="{_element_value(name, last, plan)}" '
        f'first="{_element_value(name, first, plan)}" />'
        for name, _ in _sort_columns(plan)
    )
    page = str(page_number - 1)
    inner = f'<cookie page="{page}" hash="{_signature(page, body, plan)}">{body}</cookie>'
    # The service writes lower-case escapes; the base64 values keep their case.
    encoded = re.sub(r"%[0-9A-F]{2}", lambda escape: escape.group().lower(), quote(inner, safe=""))
    return f'<cookie pagenumber="{page_number}" pagingcookie="{encoded}" istracking="False" />'


def read_skiptoken(token: str, plan: QueryPlan) -> tuple[int, SortKey]:
    """The page number the token asks for and the sort key of the last row before it.

    Tolerates a token that arrives still URL-encoded or decoded once more than expected.

    Raises:
        QueryError: the token is not one this query issued.
    """
    invalid = QueryError("The $skiptoken value is not a valid paging cookie for this query.")
    text = token.strip()
    if not text.startswith("<"):
        text = unquote(text)
    outer = _OUTER.fullmatch(text)
    if outer is None:
        raise invalid
    inner_text = outer.group(2)
    for _ in range(3):
        if inner_text.startswith("<cookie"):
            break
        inner_text = unquote(inner_text)
    inner = _INNER.fullmatch(inner_text)
    if inner is None:
        raise invalid
    page, signature, body = inner.groups()
    page_number = int(outer.group(1))
    if page_number != int(page) + 1 or signature != _signature(page, body, plan):
        raise invalid
    elements = _ELEMENT.findall(body)
    columns = _sort_columns(plan)
    if [name for name, _, _ in elements] != [name for name, _ in columns]:
        raise invalid
    try:
        key = tuple(_element_key(name, last, plan) for name, last, _ in elements)
    except (ValueError, TypeError, InvalidOperation):
        raise invalid from None
    return page_number, key


def _element_key(name: str, text: str, plan: QueryPlan) -> tuple[bool, Any]:
    table = plan.table
    if name == table.primary_key:
        guid = _BRACED_GUID.fullmatch(text)
        if guid is None:
            raise ValueError(text)
        return (True, _guid_order(guid.group(1)))
    value = _decode_value(text, table.columns[name], plan)
    return (False, None) if value is None else (True, value)
