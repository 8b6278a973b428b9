"""Reads in one ``$batch``: each query a part, its further pages followed with plain GETs, and
its rows handed over lazily so a caller that converts and drops them holds one page at a time."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from shared.adapters.dataverse import odata
from shared.adapters.dataverse.batch_format import BatchOperation, BatchPartResult, part_error
from shared.adapters.dataverse.bulk import MAX_BATCH_OPERATIONS, Send
from shared.errors import BadRequest, System

MAX_PAGE_SIZE = 5000


@dataclass(frozen=True, slots=True)
class Query:
    """One collection read, as sent inside a ``$batch`` by ``DataverseClient.iter_read_batch``."""

    entity_set: str
    select: Sequence[str]
    filter: str | None = None
    aliases: Sequence[tuple[str, str]] = field(default_factory=tuple)
    page_size: int = MAX_PAGE_SIZE



class BatchReader:
    """The client's batched reads."""

    def __init__(
        self,
        send: Send,
        url: Callable[[str], str],
        post_batch_lazily: Callable[
            [Sequence[BatchOperation], Mapping[str, str]], Iterator[BatchPartResult]
        ],
    ) -> None:
        self._send = send
        self._url = url
        self._post_batch_lazily = post_batch_lazily

    def iter_read_batch(
        self, queries: Sequence[Query], *, absent_ok: Collection[str] = ()
    ) -> Iterator[Iterator[dict[str, Any]]]:
        """Every query's rows from ``$batch`` requests, query by query, each as an iterator.

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
                    raise part_error(part)
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
