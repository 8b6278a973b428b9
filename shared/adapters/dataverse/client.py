"""Dataverse Web API client on ``requests``: queries, paging, writes, bulk messages and ``$batch``.

Every request goes through ``http_policy.send`` (one retry policy, one error mapping). Queries are
built by ``odata`` so values are always escaped and encoded; lookups by many values are chunked
so each URL stays under the service's limit. Batched reads live in ``dataverse_reads`` and bulk
writes in ``dataverse_bulk``; both send through this client's transport.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import requests

from shared.adapters.dataverse import odata
from shared.adapters.dataverse.batch_format import BatchOperation, part_error
from shared.adapters.dataverse.bulk import MAX_BATCH_OPERATIONS, BulkUpdate, BulkWriter
from shared.adapters.dataverse.change_sets import ChangeSetWriter, Group
from shared.adapters.dataverse.reads import MAX_PAGE_SIZE, BatchReader, Query
from shared.adapters.http.policy import CallStats, RetryPolicy, ServiceCaller
from shared.config import DataverseSettings, HttpSettings
from shared.errors import BadRequest, System

__all__ = ["MAX_PAGE_SIZE", "BulkUpdate", "DataverseClient", "Query"]

logger = logging.getLogger(__name__)

_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")


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
        self._bulk = BulkWriter(self._send, self._url)
        self._reads = BatchReader(self._send, self._url, self._bulk.post_batch_lazily)
        self._change_sets = ChangeSetWriter(self._bulk, self._url)

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

    def rows_by_id(
        self, entity_set: str, ids: Sequence[str], *, select: Sequence[str]
    ) -> list[tuple[int, dict[str, Any] | None]]:
        """Each row by its id in one ``$batch`` (a GET part per id, every part answered), as
        (status, row): 200 with the row, or 404 (missing) / 403 (the caller may not read it)
        and None; any other failure raises its error. The caller's own rights apply, so the two
        refusals tell a missing record from a hidden one."""
        if len(ids) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"at most {MAX_BATCH_OPERATIONS} ids a batch")
        query = odata.query_string([("$select", ",".join(select))])
        parts = [BatchOperation("GET", self._url(f"{entity_set}({odata.guid_literal(row_id)})"
                                                 f"?{query}"))
                 for row_id in ids]
        results = self._bulk.post_batch(parts, headers={"Prefer": "odata.continue-on-error"})
        if len(results) != len(parts):
            raise BadRequest(System.DATAVERSE, "the $batch answer lacks parts",
                             operation="$batch")
        for result in results:
            if result.status >= 300 and result.status not in (403, 404):
                raise part_error(result)
        return [(result.status, result.body if result.status < 300 else None)
                for result in results]

    def where_in_queries(
        self,
        entity_set: str,
        column: str,
        values: Sequence[str],
        *,
        select: Sequence[str],
        max_url_chars: int = odata.MAX_BATCH_URL_CHARS,
        costs: dict[str, int] | None = None,
    ) -> list[Query]:
        """``In`` queries over chunks of ``values``, each URL within ``max_url_chars`` (by default
        the budget inside a ``$batch``, for ``iter_read_batch``). ``costs`` keeps each value's
        URL length for the next call with the same values (one lookup, several tables)."""
        expression, _ = odata.in_filter(column, [])
        fixed = len(self._url(entity_set)) + len(",".join(select)) + len(expression) + 64
        fixed += len(odata.encode_value(odata.string_literal(column)))
        queries = []
        for chunk in odata.chunk_for_url(
            sorted(set(values)), fixed_chars=fixed, max_url_chars=max_url_chars, costs=costs
        ):
            expression, aliases = odata.in_filter(column, chunk)
            queries.append(Query(entity_set, select, expression, aliases))
        return queries

    def iter_read_batch(
        self, queries: Sequence[Query], *, absent_ok: Collection[str] = ()
    ) -> Iterator[Iterator[dict[str, Any]]]:
        """Every query's rows, the first page of each from one ``$batch`` request (``BatchReader``).

        Each query's rows come as an iterator; consume them before asking for the next query's.
        A part that pages is followed through ``@odata.nextLink`` with plain GETs. A 404 from an
        entity set in ``absent_ok`` (a table the environment may not have, e.g. ``leads`` without
        Dynamics 365 Sales) reads as no rows; any other failed part raises its error.
        """
        return self._reads.iter_read_batch(queries, absent_ok=absent_ok)

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
    def update_multiple_tables(self, updates: Sequence[BulkUpdate]) -> None:
        """Several tables' ``UpdateMultiple`` calls as one ``$batch`` request (``BulkWriter``)."""
        self._bulk.update_multiple_tables(updates)

    def write_atomically(self, groups: Sequence[Group]) -> None:
        """Creates and updates of several tables in one change set (``ChangeSetWriter``): one
        ``$batch`` request, all or nothing, as long as they fit one; else groups stay whole."""
        self._change_sets.write(groups)


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
