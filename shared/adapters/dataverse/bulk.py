"""Many rows in few requests: ``UpdateMultiple`` per table, several tables' calls in one
``$batch``, and ``$batch`` change sets (where a table takes no bulk messages).

``BulkWriter`` sends through the ``DataverseClient``'s transport, so its requests get the same
headers, token, retry policy and error mapping as every other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from shared.adapters.dataverse import odata
from shared.adapters.dataverse.batch_format import (
    BatchOperation,
    BatchPart,
    BatchPartResult,
    build_batch,
    iter_batch_response,
    parse_batch_response,
    part_error,
)
from shared.errors import BadRequest, IntegrationError, NotFound, System

logger = logging.getLogger(__name__)

MAX_BATCH_OPERATIONS = 1000
BULK_CHUNK = 1000
# What the service says when a table does not support a bulk message; seen as 400 or 404.
_UNSUPPORTED_BULK = re.compile(r"not (yet )?(been )?(implemented|supported)|does not support", re.I)


class Send(Protocol):
    """``DataverseClient``'s transport: one Web API request, retried and mapped to errors."""

    def __call__(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response: ...


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



def refuses_bulk(error: IntegrationError) -> bool:
    """Whether ``error`` is the service saying a table does not take a bulk message."""
    return isinstance(error, BadRequest | NotFound) and bool(_UNSUPPORTED_BULK.search(error.detail))


class BulkWriter:
    """The client's bulk writes; remembers the tables that turned ``UpdateMultiple`` down."""

    def __init__(self, send: Send, url: Callable[[str], str]) -> None:
        self._send = send
        self._url = url
        self._unsupported: set[tuple[str, str]] = set()

    def takes(self, entity_set: str, message: str) -> bool:
        """Whether ``entity_set`` is not yet known to refuse ``message`` (``CreateMultiple``...)."""
        return (entity_set, message) not in self._unsupported

    def refused(self, entity_set: str, message: str) -> None:
        """Remember that ``entity_set`` refused ``message``: later writes send rows one by one."""
        logger.info("%s unsupported on %s: sending rows one by one", message, entity_set)
        self._unsupported.add((entity_set, message))

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
            if (entity_set, "UpdateMultiple") not in self._unsupported:
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
                    self._unsupported.add((entity_set, "UpdateMultiple"))
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
            and (update.entity_set, "UpdateMultiple") not in self._unsupported
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
            results = self.post_batch(parts, headers={"Prefer": "odata.continue-on-error"})
            if len(results) != len(bundled):
                failed = next((r for r in results if r.status >= 400), None)
                raise (
                    part_error(failed)
                    if failed
                    else BadRequest(
                        System.DATAVERSE, "the $batch answer lacks parts", operation="$batch"
                    )
                )
            for update, result in zip(bundled, results, strict=True):
                if result.status < 400:
                    continue
                error = part_error(result)
                if not isinstance(error, BadRequest | NotFound) or not _UNSUPPORTED_BULK.search(
                    error.detail
                ):
                    raise error
                logger.info("UpdateMultiple unsupported on %s: using $batch", update.entity_set)
                self._unsupported.add((update.entity_set, "UpdateMultiple"))
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
        results = self.post_batch(change_sets)
        for result in results:
            if result.status >= 400:
                raise part_error(result)
        return results

    def post_batch(
        self, parts: Sequence[BatchPart], headers: Mapping[str, str] | None = None
    ) -> list[BatchPartResult]:
        response = self._send_batch(parts, headers)
        return parse_batch_response(response.headers.get("Content-Type", ""), response.content)

    def post_batch_lazily(
        self, operations: Sequence[BatchOperation], headers: Mapping[str, str]
    ) -> Iterator[BatchPartResult]:
        response = self._send_batch(operations, headers)
        answer_type, content = response.headers.get("Content-Type", ""), response.content
        del response  # the parser is left holding the answer's only reference
        return iter_batch_response(answer_type, content)

    def _send_batch(
        self, parts: Sequence[BatchPart], headers: Mapping[str, str] | None
    ) -> requests.Response:
        operations = sum(1 if isinstance(p, BatchOperation) else len(p) for p in parts)
        if operations > MAX_BATCH_OPERATIONS:
            raise ValueError(f"a $batch holds at most {MAX_BATCH_OPERATIONS} operations")
        content_type, body = build_batch(parts)
        # A 400 answer is a $batch whose parts say what failed; the callers read them.
        return self._send(
            "POST",
            "$batch",
            "$batch",
            idempotent=True,
            data=body,
            headers={"Content-Type": content_type, **(headers or {})},
            pass_statuses=frozenset({400}),
        )
