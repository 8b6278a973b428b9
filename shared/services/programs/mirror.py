"""The Programs mirror: each email account's dotdigital programs as ``ec_program`` rows.

A refresh reads the account's programs (every status) and its rows, plans with
``domain.programs`` and writes only what differs. Refreshes are rationed per account: the time
of the last one is kept in the sync state store (a watermark under ``(account, "Programs")``),
so every worker process, the timer's and the HTTP API's alike, sees the same last refresh and
dotdigital is asked at most once per ``min_interval_s`` unless a refresh is forced. The time is
stamped after the rows are written: a refresh that failed is tried again on the next call.

Running a refresh twice, or two at once, is safe: the second finds nothing to change, and a
row two refreshes both create has the same id in both, so the later write fails whole and is
planned again from the rows the first one wrote.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.domain.model import EmailAccount
from shared.domain.programs import ProgramsPlan, plan_programs
from shared.errors import AppError, PreconditionFailed
from shared.services.ports import (
    CrmPrograms,
    EmailPlatform,
    SyncKey,
    SyncStateStore,
    Versioned,
)

logger = logging.getLogger(__name__)

STATE_NAME = "Programs"  # the sync-type part of the watermark's key
DEFAULT_MIN_INTERVAL_S = 300.0


@dataclass(frozen=True, slots=True)
class ProgramsRefresh:
    """What one account's refresh did; ``refreshed`` is False when the mirror was fresh enough
    (nothing was asked of dotdigital) or the refresh failed (``error``)."""

    account: str
    refreshed: bool
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    error: str | None = None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ProgramsMirror:
    def __init__(
        self,
        platform: EmailPlatform,
        crm_programs: CrmPrograms,
        state: SyncStateStore,
        *,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if min_interval_s < 0:
            raise ValueError("min_interval_s must not be negative")
        self._platform = platform
        self._crm = crm_programs
        self._state = state
        self._min_interval = dt.timedelta(seconds=min_interval_s)
        self._clock = clock

    def refresh(self, account: EmailAccount, *, force: bool = False) -> ProgramsRefresh:
        """Mirror the account's programs if the last refresh is older than ``min_interval_s``
        (or ``force``). Errors are raised (``refresh_all`` is the forgiving one)."""
        key = SyncKey(account.row_id, STATE_NAME)
        now = self._clock()
        last = self._state.get_watermark(key)
        # A stamp ahead of this clock (another worker's clock runs fast) also counts as fresh.
        if not force and last is not None and now - last.value < self._min_interval:
            return ProgramsRefresh(account.row_id, refreshed=False)
        programs = self._platform.programs(account)
        try:
            plan = self._write(account, plan_programs(programs, self._crm.rows(account.row_id)))
        except PreconditionFailed:
            # Another refresh created some of these rows meanwhile: plan again from them.
            logger.info("account=%s programs changed during the refresh: planning again",
                        account.row_id)
            plan = self._write(account, plan_programs(programs, self._crm.rows(account.row_id)))
        self._stamp(key, last, now)
        return ProgramsRefresh(
            account.row_id, refreshed=True, created=len(plan.create), updated=plan.updated,
            deactivated=plan.deactivated, unchanged=plan.unchanged,
            duplicates=len(plan.duplicates),
        )

    def refresh_all(
        self, accounts: Sequence[EmailAccount], *, force: bool = False
    ) -> list[ProgramsRefresh]:
        """``refresh`` for every account; one account's failure is reported in its result and
        the others go on."""
        results = []
        for account in accounts:
            try:
                results.append(self.refresh(account, force=force))
            except (AppError, ValueError) as error:
                # ValueError: a value of this account's that is malformed (an id, a stamp).
                logger.error("account=%s programs refresh failed: %s", account.row_id, error)
                results.append(ProgramsRefresh(account.row_id, refreshed=False, error=str(error)))
        return results

    def _write(self, account: EmailAccount, plan: ProgramsPlan) -> ProgramsPlan:
        for duplicate in plan.duplicates:
            logger.warning(
                "account=%s program %d has %d rows: row %s is mirrored, rows %s are left as "
                "they are", account.row_id, duplicate.program_id, len(duplicate.left) + 1,
                duplicate.kept, ", ".join(duplicate.left),
            )
        if not plan.empty:  # compared before writing: an unchanged mirror costs no write
            self._crm.apply(account.row_id, plan)
        return plan

    def _stamp(
        self, key: SyncKey, last: Versioned[dt.datetime] | None, now: dt.datetime
    ) -> None:
        """Record the refresh; the stamp never moves back (the store refuses that)."""
        to = now if last is None else max(now, last.value)
        try:
            self._state.advance_watermark(key, to, etag=None if last is None else last.etag)
        except PreconditionFailed:
            # Another worker refreshed meanwhile and stamped its own time: that one stands.
            logger.info("account=%s programs refreshed elsewhere meanwhile", key.account)
