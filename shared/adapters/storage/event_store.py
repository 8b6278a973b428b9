"""The engagement event store on Azure Table Storage (``EventStore``).

Data model: one table (default ``engagement``), one partition per person,
``PartitionKey = sha256(match key)`` (``shared.domain.engagement.person_key``); no row holds an
address.

| RowKey                              | Holds                                                  |
|-------------------------------------|--------------------------------------------------------|
| ``a|summary``                       | ``Kind`` = ``summary``, ``n_<kind>`` counts,           |
|                                     | ``FirstAt``, ``LastAt``: exactly the events held       |
| ``e|<inverted seconds>|<event id>``  | one event: ``Kind``, ``At``, ``SourceId``, ``Title``,  |
|                                     | ``Details`` (JSON), ``EventId``                        |

The summary sorts before every event and events sort newest first, so a timeline's first page
is ONE range query: the summary row, then the latest events.

Writes, per person: one entity-group transaction per chunk of at most 99 events that *creates*
the event rows and writes the summary with ``add(summary, chunk)`` (create when absent, else
replace on the ETag it was read with). The transaction is atomic, so the summary counts exactly
the event rows. When it fails:

- an event row exists already (a replay, or a concurrent writer of the same batch): the chunk's
  row keys present are read in one range query, and the transaction is retried with the others
  only and the summary recomputed for them;
- the summary changed (ETag) or was created meanwhile: it is re-read and the transaction retried.

Retries are bounded with randomised back-off; after that ``PreconditionFailed`` (retryable) goes
to the caller, whose redelivery is safe because nothing was half-written.

Retention: ``purge`` reads each affected partition once, deletes its old events in transactions
that also replace the summary with the summary of the rows that remain (on its ETag, so a
concurrent write makes it re-read), and deletes the summary when nothing remains.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError
from azure.data.tables import (
    TableEntity,
    TableServiceClient,
    TransactionOperation,
    UpdateMode,
)

from shared.adapters.storage import codec
from shared.adapters.storage.errors import table_error
from shared.adapters.storage.rows import TableRows
from shared.domain.engagement import (
    EMPTY_SUMMARY,
    EVENT_ROW_END,
    EVENT_ROW_PREFIX,
    SUMMARY_ROW_KEY,
    EngagementEvent,
    EventKind,
    PersonSummary,
    TimelineEntry,
    TimelinePage,
    WriteResult,
    add,
    first_row_key_before,
    row_key,
    summarise,
    timeline_kinds,
)
from shared.errors import PreconditionFailed, System

DEFAULT_TABLE = "engagement"
# A transaction holds at most 100 operations: 99 event rows and the summary.
CHUNK = 99
# A timeline page is one request; Table Storage returns at most 1000 rows per request.
SUMMARY_KIND = "summary"
_MAX_ATTEMPTS = 16
_MAX_BACK_OFF_S = 0.5
# Conflicts a transaction may lose and win on a retry: a row exists (409), an ETag no longer
# matches (412), a row to replace or delete is gone (404).
_RACES = {404, 409, 412}
_Operation = tuple[TransactionOperation, Mapping[str, Any]] | tuple[
    TransactionOperation, Mapping[str, Any], Mapping[str, Any]
]


class TableEventStore:
    """``EventStore`` on one Table Storage table; see the module docstring for the model.

    ``queries`` counts the query requests ``timeline`` made and ``transactions`` the
    transactions submitted, so tests can hold the store to its request budget.
    """

    def __init__(
        self,
        service: TableServiceClient,
        table_name: str = DEFAULT_TABLE,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = service.get_table_client(table_name)
        self._rows = TableRows(self._table)
        self._sleep = sleep
        self.queries = 0
        self.transactions = 0

    # --- writes -----------------------------------------------------------------------------
    def write(self, events: Iterable[EngagementEvent]) -> WriteResult:
        by_person: dict[str, dict[str, EngagementEvent]] = {}
        seen = 0
        for event in events:
            if not isinstance(event, EngagementEvent):
                raise ValueError(f"not an engagement event: {event!r}")
            seen += 1
            # The first reading of an event in the batch wins; the rest are repeats.
            by_person.setdefault(event.person_key, {}).setdefault(row_key(event), event)
        new = 0
        for partition, rows in by_person.items():
            ordered = [rows[key] for key in sorted(rows)]
            for start in range(0, len(ordered), CHUNK):
                new += self._write_chunk(partition, ordered[start : start + CHUNK])
        return WriteResult(new=new, existing=seen - new)

    def _write_chunk(self, partition: str, events: list[EngagementEvent]) -> int:
        pending = events
        for attempt in range(_MAX_ATTEMPTS):
            if not pending:
                return 0
            stored = self._rows.get(partition, SUMMARY_ROW_KEY)
            summary = EMPTY_SUMMARY if stored is None else _summary_of(stored)
            operations: list[_Operation] = [
                (TransactionOperation.CREATE, _event_entity(partition, event))
                for event in pending
            ]
            operations.append(_summary_operation(partition, add(summary, pending), stored))
            if self._submit(operations, "write events"):
                return len(pending)
            present = self._present(partition, [row_key(event) for event in pending])
            pending = [event for event in pending if row_key(event) not in present]
            self._back_off(attempt)
        raise PreconditionFailed(System.TABLES, "the person's summary kept changing",
                                 operation="write events")

    def _present(self, partition: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` exist: one range query (a filter may hold only 15 comparisons)."""
        rows = self._rows.query(
            "PartitionKey eq @pk and RowKey ge @low and RowKey le @high",
            {"pk": partition, "low": min(keys), "high": max(keys)},
            select=["RowKey"],
        )
        return {str(row["RowKey"]) for row in rows} & set(keys)

    def _submit(self, operations: list[_Operation], operation: str) -> bool:
        """True if the transaction committed, False if it lost a race (nothing was written)."""
        self._rows.ensure_table()
        self.transactions += 1
        try:
            self._table.submit_transaction(operations)
        except HttpResponseError as error:  # TableTransactionError among them
            code = str(getattr(error, "error_code", "") or "")
            if error.status_code in _RACES and code != "TableNotFound":
                return False
            raise table_error(error, operation) from error
        except AzureError as error:
            raise table_error(error, operation) from error
        return True

    def _back_off(self, attempt: int) -> None:
        # The first retry is immediate (a replay is no race); later ones spread competitors out.
        if attempt:
            self._sleep(random.uniform(0, min(_MAX_BACK_OFF_S, 0.01 * 2**attempt)))

    # --- reads ------------------------------------------------------------------------------
    def timeline(
        self,
        person_key: str,
        *,
        kinds: Collection[EventKind] | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> TimelinePage:
        wanted = timeline_kinds(person_key, kinds, limit)
        first_page = continuation is None
        parameters: dict[str, Any] = {"pk": person_key, "low": SUMMARY_ROW_KEY,
                                      "high": EVENT_ROW_END}
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        if wanted is not None and wanted != set(EventKind):
            # Filtered by the service, so a page is never more than ``limit`` events; the
            # summary row passes the filter by its own kind.
            names = [SUMMARY_KIND, *sorted(kind.value for kind in wanted)]
            parameters.update({f"k{n}": name for n, name in enumerate(names)})
            # Spaces inside the parentheses: the SDK finds ``@name`` parameters by splitting on
            # spaces, and would read ``@k2)`` as a parameter named ``k2)``.
            alternatives = " or ".join(f"Kind eq @k{n}" for n in range(len(names)))
            query += f" and ( {alternatives} )"
        token = None if continuation is None else _decode_continuation(continuation)
        self._rows.ensure_table()
        self.queries += 1
        try:
            pages = self._table.query_entities(
                query, parameters=parameters, results_per_page=limit + (1 if first_page else 0)
            # The Tables SDK's continuation is a dict, though ``ItemPaged`` declares a str.
            ).by_page(continuation_token=token)  # type: ignore[arg-type]
            rows = list(next(pages, []))
            following = pages.continuation_token  # type: ignore[attr-defined]
        except AzureError as error:
            raise table_error(error, "read timeline") from error
        summary: PersonSummary | None = None
        if first_page:
            head = [row for row in rows if row["RowKey"] == SUMMARY_ROW_KEY]
            summary = _summary_of(head[0]) if head else EMPTY_SUMMARY
        # At most ``limit`` events: the extra row of a first page is the summary, which exists
        # whenever events do (both are written in one transaction).
        entries = tuple(_entry_of(row) for row in rows
                        if row["RowKey"] != SUMMARY_ROW_KEY)[:limit]
        return TimelinePage(summary, entries, _encode_continuation(following))

    # --- retention --------------------------------------------------------------------------
    def purge(self, before: datetime) -> int:
        low = first_row_key_before(before)
        if low >= EVENT_ROW_END:
            return 0
        old = self._rows.query("RowKey ge @low and RowKey lt @high",
                               {"low": low, "high": EVENT_ROW_END},
                               select=["PartitionKey"])
        deleted = 0
        for partition in sorted({str(row["PartitionKey"]) for row in old}):
            deleted += self._purge_partition(partition, low)
        return deleted

    def _purge_partition(self, partition: str, low: str) -> int:
        deleted = failures = 0
        while True:
            stored = self._rows.get(partition, SUMMARY_ROW_KEY)
            rows = self._rows.query(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                {"pk": partition, "low": EVENT_ROW_PREFIX, "high": EVENT_ROW_END},
                select=["RowKey", "Kind", "At"],
            )
            old = [str(row["RowKey"]) for row in rows if str(row["RowKey"]) >= low][:CHUNK]
            if not old:
                return deleted
            doomed = set(old)
            kept = summarise(_Counted(EventKind(str(row["Kind"])), codec.plain_utc(row["At"]))
                             for row in rows if str(row["RowKey"]) not in doomed)
            operations: list[_Operation] = [
                (TransactionOperation.DELETE, {"PartitionKey": partition, "RowKey": key})
                for key in old
            ]
            if stored is not None:
                operations.append(_summary_operation(partition, kept, stored))
            if self._submit(operations, "purge events"):
                deleted += len(old)
                continue
            failures += 1
            if failures == _MAX_ATTEMPTS:
                raise PreconditionFailed(System.TABLES, "the person's events kept changing",
                                         operation="purge events")
            self._back_off(failures)


def _encode_continuation(token: object) -> str | None:
    """The service's continuation (its own opaque next keys) as one URL-safe string."""
    if not isinstance(token, dict) or not (token.get("PartitionKey") or token.get("RowKey")):
        return None
    text = json.dumps([token.get("PartitionKey"), token.get("RowKey")], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def _decode_continuation(continuation: str) -> dict[str, str | None]:
    # It comes back from a browser: anything malformed is the caller's error, not ours. A
    # tampered one only moves the start within the partition the filter already fixes.
    try:
        keys = json.loads(base64.urlsafe_b64decode(continuation.encode("ascii")))
    except (ValueError, TypeError, AttributeError, UnicodeError) as error:
        raise ValueError("invalid continuation") from error
    if (not isinstance(keys, list) or len(keys) != 2
            or not all(key is None or isinstance(key, str) for key in keys)):
        raise ValueError("invalid continuation")
    return {"PartitionKey": keys[0], "RowKey": keys[1]}


@dataclass(frozen=True, slots=True)
class _Counted:
    """What ``add`` needs of a stored row, read without its title and details."""

    kind: EventKind
    at: datetime


def _event_entity(partition: str, event: EngagementEvent) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": row_key(event),
        "Kind": event.kind.value,
        "At": event.at,
        "SourceId": event.source_id,
        "Title": event.title,
        "Details": event.details_json,
        "EventId": event.event_id,
    }


def _entry_of(entity: Mapping[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        event_id=str(entity["EventId"]),
        kind=EventKind(str(entity["Kind"])),
        at=codec.plain_utc(entity["At"]),
        source_id=str(entity["SourceId"]),
        title=str(entity.get("Title") or ""),
        details=json.loads(str(entity.get("Details") or "{}")),
    )


def _summary_entity(partition: str, summary: PersonSummary) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": SUMMARY_ROW_KEY,
                              "Kind": SUMMARY_KIND}
    entity.update({f"{codec.COUNTER_PREFIX}{kind.value}": codec.int64(summary.count(kind))
                   for kind in EventKind})
    # Table Storage has no nulls: an absent time reads back as None.
    if summary.first_at is not None:
        entity["FirstAt"] = summary.first_at
    if summary.last_at is not None:
        entity["LastAt"] = summary.last_at
    return entity


def _summary_of(entity: Mapping[str, Any]) -> PersonSummary:
    counts = {kind: codec.read_int(entity, f"{codec.COUNTER_PREFIX}{kind.value}")
              for kind in EventKind}
    first, last = entity.get("FirstAt"), entity.get("LastAt")
    return PersonSummary(
        sends=counts[EventKind.SEND],
        opens=counts[EventKind.OPEN],
        clicks=counts[EventKind.CLICK],
        page_views=counts[EventKind.PAGE_VIEW],
        form_responses=counts[EventKind.FORM_RESPONSE],
        first_at=codec.plain_utc(first) if isinstance(first, datetime) else None,
        last_at=codec.plain_utc(last) if isinstance(last, datetime) else None,
    )


def _summary_operation(
    partition: str, summary: PersonSummary, stored: TableEntity | None
) -> _Operation:
    """Create the summary, or replace / delete it on the ETag it was read with."""
    if stored is None:
        return (TransactionOperation.CREATE, _summary_entity(partition, summary))
    condition = {"etag": str(stored.metadata["etag"]),
                 "match_condition": MatchConditions.IfNotModified}
    if summary.total == 0:
        return (TransactionOperation.DELETE,
                {"PartitionKey": partition, "RowKey": SUMMARY_ROW_KEY}, condition)
    return (TransactionOperation.UPDATE, _summary_entity(partition, summary),
            {"mode": UpdateMode.REPLACE, **condition})
