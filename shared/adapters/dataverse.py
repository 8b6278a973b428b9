"""Dataverse Web API client on ``requests``: queries, paging, writes, bulk messages and ``$batch``.

Every request goes through ``http_policy.send`` (one retry policy, one error mapping). Queries are
built by ``odata`` so values are always escaped and encoded; lookups by many values are chunked
so each URL stays under the service's limit.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import requests

from shared.adapters import odata
from shared.adapters.dataverse_batch import (
    BatchOperation,
    BatchPart,
    BatchPartResult,
    build_batch,
    iter_batch_response,
    parse_batch_response,
)
from shared.adapters.http_policy import CallStats, RetryPolicy, ServiceCaller, classify
from shared.config import DataverseSettings, HttpSettings
from shared.errors import BadRequest, IntegrationError, NotFound, System

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 5000
MAX_BATCH_OPERATIONS = 1000
BULK_CHUNK = 1000
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")
# What the service says when a table does not support a bulk message; seen as 400 or 404.
_UNSUPPORTED_BULK = re.compile(r"not (yet )?(been )?(implemented|supported)|does not support", re.I)


@dataclass(frozen=True, slots=True)
class Query:
    """One collection read, as sent inside a ``$batch`` by ``DataverseClient.read_batch``."""

    entity_set: str
    select: Sequence[str]
    filter: str | None = None
    aliases: Sequence[tuple[str, str]] = field(default_factory=tuple)
    page_size: int = MAX_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class BulkUpdate:
    """One table's rows for ``UpdateMultiple``; each row carries its primary key."""

    entity_set: str
    logical_name: str
    primary_key: str
    rows: Sequence[Mapping[str, Any]]

    def targets(self) -> list[dict[str, Any]]:
        kind = f"Microsoft.Dynamics.CRM.{self.logical_name}"
        return [{"@odata.type": kind, **row} for row in self.rows]


class DataverseClient:
    """One environment's Web API, called as the app or (with another token source) as a user."""

    def __init__(
        self,
        settings: DataverseSettings,
        http: HttpSettings,
        token: Callable[[], str],
        *,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        stats: CallStats | None = None,
    ) -> None:
        self._settings = settings
        self._token = token
        self._caller = ServiceCaller(
            System.DATAVERSE, http, session=session, policy=policy, stats=stats
        )
        self.stats = self._caller.stats
        self._bulk_unsupported: set[tuple[str, str]] = set()

    # --- transport -----------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith("https://"):
            return path
        return self._settings.api_url + path.lstrip("/")

    def _send(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        all_headers = {
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "Authorization": f"Bearer {self._token()}",
            **(headers or {}),
        }
        return self._caller.send(
            method, self._url(path), operation, idempotent=idempotent, headers=all_headers, **kwargs
        )

    # --- reads ---------------------------------------------------------------------------------
    def who_am_i(self) -> dict[str, Any]:
        return dict(self._send("GET", "WhoAmI", "WhoAmI").json())

    def iter_rows(
        self,
        entity_set: str,
        *,
        select: Sequence[str],
        filter: str | None = None,
        aliases: Sequence[tuple[str, str]] = (),
        orderby: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every matching row, following ``@odata.nextLink`` unchanged, one page at a time."""
        params: list[tuple[str, str]] = [("$select", ",".join(select))]
        if filter:
            params.append(("$filter", filter))
        if orderby:
            params.append(("$orderby", orderby))
        params += aliases
        url = f"{self._url(entity_set)}?{odata.query_string(params)}"
        prefer = {"Prefer": f"odata.maxpagesize={min(page_size, MAX_PAGE_SIZE)}"}
        while url:
            body = self._send("GET", url, f"query {entity_set}", headers=prefer).json()
            yield from body.get("value", [])
            url = body.get("@odata.nextLink") or ""

    def rows_where_in(
        self,
        entity_set: str,
        column: str,
        values: Sequence[str],
        *,
        select: Sequence[str],
    ) -> Iterator[dict[str, Any]]:
        """Rows whose ``column`` equals one of ``values`` (case-insensitive, as Dataverse compares).

        Values are chunked so every request URL stays under the service's limit.
        """
        for query in self.where_in_queries(
            entity_set, column, values, select=select, max_url_chars=odata.MAX_URL_CHARS
        ):
            yield from self.iter_rows(
                entity_set, select=query.select, filter=query.filter, aliases=query.aliases
            )

    def where_in_queries(
        self,
        entity_set: str,
        column: str,
        values: Sequence[str],
        *,
        select: Sequence[str],
        max_url_chars: int = odata.MAX_BATCH_URL_CHARS,
    ) -> list[Query]:
        """``In`` queries over chunks of ``values``, each URL within ``max_url_chars`` (by default
        the budget inside a ``$batch``, for ``read_batch``)."""
        expression, _ = odata.in_filter(column, [])
        fixed = len(self._url(entity_set)) + len(",".join(select)) + len(expression) + 64
        fixed += len(odata.encode_value(odata.string_literal(column)))
        queries = []
        for chunk in odata.chunk_for_url(
            sorted(set(values)), fixed_chars=fixed, max_url_chars=max_url_chars
        ):
            expression, aliases = odata.in_filter(column, chunk)
            queries.append(Query(entity_set, select, expression, aliases))
        return queries

    def read_batch(
        self, queries: Sequence[Query], *, absent_ok: Collection[str] = ()
    ) -> list[list[dict[str, Any]]]:
        """Every query's rows, the first page of each from one ``$batch`` request.

        A part that pages is followed through ``@odata.nextLink`` with plain GETs. A 404 from an
        entity set in ``absent_ok`` (a table the environment may not have, e.g. ``leads`` without
        Dynamics 365 Sales) reads as no rows; any other failed part raises its error.
        """
        return [list(rows) for rows in self.iter_read_batch(queries, absent_ok=absent_ok)]

    def iter_read_batch(
        self, queries: Sequence[Query], *, absent_ok: Collection[str] = ()
    ) -> Iterator[Iterator[dict[str, Any]]]:
        """``read_batch`` query by query, each query's rows as an iterator.

        A part is parsed when its rows are asked for, and its further pages are fetched as the
        rows before them are consumed, so a caller that converts and drops rows holds one page
        at a time. Consume each query's rows before asking for the next query's.
        """
        for start in range(0, len(queries), MAX_BATCH_OPERATIONS):
            chunk = queries[start : start + MAX_BATCH_OPERATIONS]
            operations = [self._read_operation(query) for query in chunk]
            # continue-on-error: one absent table must not end the other reads.
            parts = self._post_batch_lazily(operations, {"Prefer": "odata.continue-on-error"})
            for answered, (query, part) in enumerate(zip_longest(chunk, parts)):
                if query is None or part is None:
                    answered += sum(1 for _ in parts) + (query is None)
                    raise BadRequest(
                        System.DATAVERSE,
                        f"$batch answered {answered} parts for {len(chunk)} reads",
                        operation="$batch",
                    )
                if part.status == 404 and query.entity_set in absent_ok:
                    yield iter(())
                    continue
                if part.status >= 400:
                    raise _part_error(part)
                yield self._all_pages(query, part.body)

    def _read_operation(self, query: Query) -> BatchOperation:
        params: list[tuple[str, str]] = [("$select", ",".join(query.select))]
        if query.filter:
            params.append(("$filter", query.filter))
        params += query.aliases
        return BatchOperation(
            "GET",
            f"{self._url(query.entity_set)}?{odata.query_string(params)}",
            None,
            {
                "Accept": "application/json",
                "Prefer": f"odata.maxpagesize={min(query.page_size, MAX_PAGE_SIZE)}",
            },
        )

    def _all_pages(self, query: Query, first: Any) -> Iterator[dict[str, Any]]:
        if not isinstance(first, dict):
            raise BadRequest(
                System.DATAVERSE, "a $batch read answered no JSON object", operation="$batch"
            )
        return self._pages_from(query, first)

    def _pages_from(self, query: Query, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url = first.get("@odata.nextLink") or ""
        yield from first.get("value", [])
        del first  # the page's rows go with it once consumed
        prefer = {"Prefer": f"odata.maxpagesize={min(query.page_size, MAX_PAGE_SIZE)}"}
        while url:
            body = self._send("GET", url, f"query {query.entity_set}", headers=prefer).json()
            url = body.get("@odata.nextLink") or ""
            yield from body.pop("value", [])
            del body

    # --- single writes -------------------------------------------------------------------------
    def create(self, entity_set: str, row: Mapping[str, Any]) -> str:
        response = self._send("POST", entity_set, f"create {entity_set}", json=dict(row))
        return _id_from_entity_header(response)

    def update(
        self,
        entity_set: str,
        row_id: str,
        changes: Mapping[str, Any],
        *,
        etag: str = "*",
    ) -> None:
        """Update only (never an upsert): ``If-Match`` is ``*`` or the row's ETag."""
        path = f"{entity_set}({odata.guid_literal(row_id)})"
        self._send(
            "PATCH",
            path,
            f"update {entity_set}",
            idempotent=True,
            json=dict(changes),
            headers={"If-Match": etag},
        )

    # --- bulk ----------------------------------------------------------------------------------
    def update_multiple(
        self,
        entity_set: str,
        logical_name: str,
        primary_key: str,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Update rows (each carries its primary key) with ``UpdateMultiple``, or ``$batch``."""
        for start in range(0, len(rows), BULK_CHUNK):
            chunk = rows[start : start + BULK_CHUNK]
            if (entity_set, "UpdateMultiple") not in self._bulk_unsupported:
                targets = [
                    {"@odata.type": f"Microsoft.Dynamics.CRM.{logical_name}", **row}
                    for row in chunk
                ]
                try:
                    self._send(
                        "POST",
                        f"{entity_set}/Microsoft.Dynamics.CRM.UpdateMultiple",
                        f"UpdateMultiple {entity_set}",
                        idempotent=True,
                        json={"Targets": targets},
                    )
                    continue
                except (BadRequest, NotFound) as error:
                    if not _UNSUPPORTED_BULK.search(error.detail):
                        raise
                    logger.info("UpdateMultiple unsupported on %s: using $batch", entity_set)
                    self._bulk_unsupported.add((entity_set, "UpdateMultiple"))
            operations = [
                BatchOperation(
                    "PATCH",
                    self._url(f"{entity_set}({odata.guid_literal(str(row[primary_key]))})"),
                    {k: v for k, v in row.items() if k != primary_key},
                    {"If-Match": "*"},
                )
                for row in chunk
            ]
            self.execute_batch([operations])

    def update_multiple_tables(self, updates: Sequence[BulkUpdate]) -> None:
        """Several tables' ``UpdateMultiple`` calls as one ``$batch`` request.

        Each call is its own change set, so each stays all-or-nothing; the batch counts as one
        request against the service protection limits (its execution time still counts in
        full). A table that does not take bulk messages falls back to ``update_multiple``.
        """
        pending = [update for update in updates if update.rows]
        bundled = [
            update
            for update in pending
            if len(update.rows) <= BULK_CHUNK
            and (update.entity_set, "UpdateMultiple") not in self._bulk_unsupported
        ]
        if len(bundled) < 2:  # one call gains nothing from a batch around it
            bundled = []
        rest = [update for update in pending if update not in bundled]
        if bundled:
            parts = [
                [
                    BatchOperation(
                        "POST",
                        self._url(f"{update.entity_set}/Microsoft.Dynamics.CRM.UpdateMultiple"),
                        {"Targets": update.targets()},
                    )
                ]
                for update in bundled
            ]
            results = self._post_batch(parts, headers={"Prefer": "odata.continue-on-error"})
            if len(results) != len(bundled):
                failed = next((r for r in results if r.status >= 400), None)
                raise (
                    _part_error(failed)
                    if failed
                    else BadRequest(
                        System.DATAVERSE, "the $batch answer lacks parts", operation="$batch"
                    )
                )
            for update, result in zip(bundled, results, strict=True):
                if result.status < 400:
                    continue
                error = _part_error(result)
                if not isinstance(error, BadRequest | NotFound) or not _UNSUPPORTED_BULK.search(
                    error.detail
                ):
                    raise error
                logger.info("UpdateMultiple unsupported on %s: using $batch", update.entity_set)
                self._bulk_unsupported.add((update.entity_set, "UpdateMultiple"))
                rest.append(update)
        for update in rest:
            self.update_multiple(
                update.entity_set, update.logical_name, update.primary_key, update.rows
            )

    def execute_batch(
        self,
        change_sets: Sequence[Sequence[BatchOperation]],
    ) -> list[BatchPartResult]:
        """Run atomic change sets in one ``$batch``; raises the first failed operation's error."""
        results = self._post_batch(change_sets)
        for result in results:
            if result.status >= 400:
                raise _part_error(result)
        return results

    def _post_batch(
        self, parts: Sequence[BatchPart], headers: Mapping[str, str] | None = None
    ) -> list[BatchPartResult]:
        operations = sum(1 if isinstance(p, BatchOperation) else len(p) for p in parts)
        if operations > MAX_BATCH_OPERATIONS:
            raise ValueError(f"a $batch holds at most {MAX_BATCH_OPERATIONS} operations")
        content_type, body = build_batch(parts)
        response = self._send(
            "POST",
            "$batch",
            "$batch",
            idempotent=True,
            data=body,
            headers={"Content-Type": content_type, **(headers or {})},
            pass_statuses=frozenset({400}),
        )
        return parse_batch_response(response.headers.get("Content-Type", ""), response.content)

    def _post_batch_lazily(
        self, operations: Sequence[BatchOperation], headers: Mapping[str, str]
    ) -> Iterator[BatchPartResult]:
        if len(operations) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"a $batch holds at most {MAX_BATCH_OPERATIONS} operations")
        content_type, body = build_batch(operations)
        response = self._send(
            "POST",
            "$batch",
            "$batch",
            idempotent=True,
            data=body,
            headers={"Content-Type": content_type, **headers},
            pass_statuses=frozenset({400}),
        )
        del body
        answer_type, content = response.headers.get("Content-Type", ""), response.content
        del response  # the parser is left holding the answer's only reference
        return iter_batch_response(answer_type, content)


def _id_from_entity_header(response: requests.Response) -> str:
    header = response.headers.get("OData-EntityId", "")
    match = _ENTITY_ID.search(header)
    if match:
        return match.group(1)
    body = response.json() if response.content else {}
    for key, value in body.items():
        if key.endswith("id") and isinstance(value, str) and len(value) == 36:
            return value
    raise BadRequest(System.DATAVERSE, "create returned no entity id", status=response.status_code)


def _part_error(result: BatchPartResult) -> IntegrationError:
    """The same error class a standalone request with this status would raise."""
    standalone = requests.Response()
    standalone.status_code = result.status
    standalone.headers.update(result.headers)
    standalone._content = json.dumps(result.body).encode() if result.body is not None else b""
    return classify(System.DATAVERSE, standalone, "$batch part") or BadRequest(
        System.DATAVERSE, "batch operation failed", status=result.status
    )
