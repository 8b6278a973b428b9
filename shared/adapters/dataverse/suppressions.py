"""Email Suppression rows, Do not bulk email and Notes in Dataverse (the ``CrmSuppressions`` port).

A lookup is one ``$batch``, made as ``records`` makes its own (``EmailLookup``): ``In`` queries on
``ec_emailsuppression.ec_emailaddress`` (every account's rows, active or not) and, when asked,
on the records' ``emailaddress1``; a row or record is kept only if its own address has one of the
keys asked for, so a collation look-alike (``josé@`` for ``jose@``) never receives consent.

Every write that must stand or fall together is one change set in one ``$batch``
(``DataverseClient.write_atomically``): a plan's new rows, row changes, Notes and flags; a
handled Request Resubscribe's row and Note. A row is deactivated in the same transaction as the
Notes about it, so a rerun after a failure can never write a Note twice or lose one. New rows
and Notes carry ids chosen here, so the same ``$batch`` sent again after a lost answer fails on
the existing ids (a ``PreconditionFailed``: read again and decide again) rather than writing
copies.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from shared.adapters.dataverse.change_sets import UPDATE
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.odata import guid_literal
from shared.adapters.dataverse.padded_index import PaddedIndex
from shared.adapters.dataverse.records import EmailLookup, checked_keys
from shared.adapters.dataverse.suppression_rows import (
    ACCOUNT_COLUMN,
    ACTIVE,
    RECORD_TABLES,
    STATUS_LENGTH,
    SUPPRESSIONS,
    NewId,
    new_id,
    note_writes,
    plan_groups,
    row_by_own_address,
    row_or_record,
    write,
)
from shared.adapters.dataverse.values import write_datetime
from shared.domain.suppression import (
    FlagRecord,
    SuppressionOrigin,
    SuppressionPlan,
    SuppressionRow,
)
from shared.services.ports import PushResult, RequestResult

logger = logging.getLogger(__name__)


class DataverseCrmSuppressions:
    def __init__(
        self, client: DataverseClient, padded: PaddedIndex | None = None,
        make_id: NewId = new_id,
    ) -> None:
        self._client = client
        # Its own padded index: one shared with ``DataverseCrmRecords`` would be refreshed
        # there without this lookup's suppression rows.
        self._lookup = EmailLookup(client, (SUPPRESSIONS, *RECORD_TABLES), padded)
        self._make_id = make_id

    def lookup(
        self, email_keys: Collection[str], *, with_records: bool
    ) -> tuple[list[SuppressionRow], list[FlagRecord]]:
        tables = (SUPPRESSIONS, *RECORD_TABLES) if with_records else (SUPPRESSIONS,)
        rows: list[SuppressionRow] = []
        records: list[FlagRecord] = []
        for item in self._lookup.find(checked_keys(email_keys), row_or_record, tables):
            if isinstance(item, SuppressionRow):
                rows.append(item)
            else:
                records.append(item)
        return rows, records

    def apply(self, account_id: str, plan: SuppressionPlan) -> None:
        groups = plan_groups(account_id, plan, self._make_id)  # checks every id first
        self._client.write_atomically(groups)
        logger.info(
            "suppression plan written: %d rows created, %d changed, %d notes, %d flags",
            len(plan.create), len(plan.change), len(plan.notes), len(plan.flags),
        )

    def unpushed_rows(self, account_id: str) -> list[SuppressionRow]:
        # ``ne`` never matches a null (SQL), so rows without an origin are asked for by name.
        return self._rows(
            account_id,
            f"statecode eq {ACTIVE[0]} and ec_pushedon eq null and "
            f"(ec_origin eq null or ec_origin ne {int(SuppressionOrigin.DOTDIGITAL)})",
        )

    def mark_pushed(self, results: Sequence[PushResult]) -> None:
        rows = []
        for result in results:
            row = {
                SUPPRESSIONS.primary_key: guid_literal(result.row_id),
                "ec_pushedon": write_datetime(result.pushed_on),
            }
            if result.suppressed_on is not None:
                row["ec_suppressedon"] = write_datetime(result.suppressed_on)
            if result.status is not None:
                row["ec_resubscriptionstatus"] = result.status[:STATUS_LENGTH]
            rows.append(row)
        # One group a row: stamping is safe in parts, should the rows ever need several.
        self._client.write_atomically([[write(UPDATE, SUPPRESSIONS, [row])] for row in rows])

    def resubscribe_requests(self, account_id: str) -> list[SuppressionRow]:
        return self._rows(account_id, "ec_requestresubscribe eq true")

    def record_requests(self, results: Sequence[RequestResult]) -> None:
        groups = []
        for result in results:
            row: dict[str, object] = {
                SUPPRESSIONS.primary_key: guid_literal(result.row_id),
                "ec_requestresubscribe": False,
                "ec_resubscriptionstatus": result.status[:STATUS_LENGTH],
            }
            if result.requested_on is not None:
                row["ec_resubscriptionrequestedon"] = write_datetime(result.requested_on)
            groups.append([write(UPDATE, SUPPRESSIONS, [row]),
                           *note_writes([result.note], self._make_id)])
        # Each row with its Note; the change sets hold many requests' rows and Notes in one
        # bulk message per table, so a run's requests cost a request or two, not one each.
        self._client.write_atomically(groups)

    def _rows(self, account_id: str, condition: str) -> list[SuppressionRow]:
        """The account's rows that meet ``condition``, every page."""
        rows = self._client.iter_rows(
            SUPPRESSIONS.entity_set,
            select=SUPPRESSIONS.select,
            filter=f"{ACCOUNT_COLUMN} eq {guid_literal(account_id)} and ({condition})",
        )
        return [row_by_own_address(row) for row in rows]

