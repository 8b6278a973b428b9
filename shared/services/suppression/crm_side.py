"""What CRM users asked for, carried to dotdigital at the start of a SuppressionLists run.

- Email Suppression rows that users made (origin CRM, not yet pushed) are suppressed in
  dotdigital in batches and stamped *pushed on*; an address dotdigital has no contact for is
  reported on its row and stamped too, so it is never retried for ever.
- Rows whose **Request Resubscribe** is ticked get dotdigital's resubscribe call *with*
  confirmation email; the outcome becomes the row's resubscription status and a Note on it, and
  the box is cleared, in one write. While a confirmation sent earlier is still inside
  dotdigital's resend window no second call is made (it would send no email): the status says so.

Both run before the run's read is planned, so a resubscription dotdigital grants at once
(``ContactAdded``) is found by the same run's read, which then deactivates the row.

Every step is safe to repeat: suppressing twice is harmless, and a request is finished by the
write that clears its box (with its Note, in the same change set; ``REQUEST_CHUNK`` requests a
write). A crash between dotdigital's answer and that write repeats the call on the next tick;
dotdigital sends no second email inside its resend window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.domain.email import match_key
from shared.domain.model import EmailAccount
from shared.domain.resubscribe import (
    RequestOutcome,
    invalid_address_outcome,
    pending_outcome,
    request_outcome,
    still_pending,
)
from shared.domain.suppression import Note, SuppressionRow, format_date
from shared.errors import BadRequest
from shared.services.ports import CrmSuppressions, EmailPlatform, PushResult, RequestResult

logger = logging.getLogger(__name__)

# Addresses per suppress call and per stamp write: a few hundred rows keep both requests small.
PUSH_CHUNK = 500
# Request outcomes written together: one Dataverse request for many, and a crash before the
# write repeats at most this many resubscribe calls (harmless: dotdigital sends no second email
# inside its resend window).
REQUEST_CHUNK = 100


@dataclass
class CrmStepCounts:
    """What the step did (or, in a dry run, would do) for one account."""

    pushed: int = 0
    push_not_found: int = 0
    push_invalid: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # by outcome kind

    def as_counters(self) -> dict[str, int]:
        counters = {"pushed": self.pushed, "push_not_found": self.push_not_found,
                    "push_invalid": self.push_invalid}
        for kind, count in sorted(self.requests.items()):
            counters[f"requests_{kind}"] = count
        return counters


@dataclass(frozen=True)
class CrmSide:
    crm: CrmSuppressions
    platform: EmailPlatform
    resend_window: dt.timedelta
    dry_run: bool

    def run(self, account: EmailAccount, now: dt.datetime) -> CrmStepCounts:
        counts = CrmStepCounts()
        self._push(account, now, counts)
        self._requests(account, now, counts)
        if any(counts.as_counters().values()):
            logger.info("account=%s CRM suppressions: %s%s", account.row_id,
                        counts.as_counters(), " (dry run)" if self.dry_run else "")
        return counts

    def _push(self, account: EmailAccount, now: dt.datetime, counts: CrmStepCounts) -> None:
        rows = self.crm.unpushed_rows(account.row_id)
        for start in range(0, len(rows), PUSH_CHUNK):
            chunk = rows[start:start + PUSH_CHUNK]
            valid = [row for row in chunk if isinstance(match_key(row.email), str)]
            not_found: set[str] = set()
            refused: dict[str, str] = {}
            if valid and not self.dry_run:
                not_found, refused = self._suppress(account, valid)
            results = [_pushed(row, now, account, not_found, refused.get(row.row_id))
                       for row in chunk]
            for result in results:
                if result.status is None:
                    counts.pushed += 1
                elif result.suppressed_on is None:
                    counts.push_invalid += 1
                else:
                    counts.push_not_found += 1
            if not self.dry_run:
                self.crm.mark_pushed(results)

    def _suppress(
        self, account: EmailAccount, rows: Sequence[SuppressionRow]
    ) -> tuple[set[str], dict[str, str]]:
        """Suppress the rows' addresses: the match keys dotdigital does not know, and why it
        refused any row (by row id)."""
        try:
            return self.platform.suppress(account, [row.email.strip() for row in rows]), {}
        except BadRequest:
            if len(rows) == 1:
                raise
        # One address dotdigital refuses must not hold the others back on every tick: one by
        # one, and the refused ones are reported on their rows like unknown ones.
        not_found: set[str] = set()
        refused: dict[str, str] = {}
        for row in rows:
            try:
                not_found |= self.platform.suppress(account, [row.email.strip()])
            except BadRequest as error:
                refused[row.row_id] = error.detail or str(error)
        return not_found, refused

    def _requests(self, account: EmailAccount, now: dt.datetime, counts: CrmStepCounts) -> None:
        done: list[RequestResult] = []
        for row in self.crm.resubscribe_requests(account.row_id):
            outcome = self._request(account, row, now)
            counts.requests[outcome.kind] = counts.requests.get(outcome.kind, 0) + 1
            if self.dry_run:
                continue
            done.append(RequestResult(
                row_id=row.row_id, status=outcome.status,
                note=Note("ec_emailsuppression", row.row_id, outcome.note_subject,
                          outcome.status),
                requested_on=outcome.challenged_on if outcome.kind == "challenged" else None,
            ))
            if len(done) >= REQUEST_CHUNK:
                self.crm.record_requests(done)
                done = []
        if done:
            self.crm.record_requests(done)

    def _request(
        self, account: EmailAccount, row: SuppressionRow, now: dt.datetime
    ) -> RequestOutcome:
        if not isinstance(match_key(row.email), str):
            return invalid_address_outcome()
        if still_pending(row.requested_on, now, self.resend_window) and row.requested_on:
            return pending_outcome(row.requested_on, account.name, self.resend_window)
        if self.dry_run:
            return RequestOutcome("would_request", "", "")
        try:
            answer = self.platform.resubscribe(
                account, row.email.strip(), preferred_locale=account.preferred_locale,
                return_url=account.resubscribe_return_url,
            )
        except BadRequest as refused:
            return request_outcome("", account_name=account.name, now=now, reason=row.reason,
                                   refusal=refused.detail or str(refused))
        return request_outcome(answer, account_name=account.name, now=now, reason=row.reason)


def _pushed(
    row: SuppressionRow, now: dt.datetime, account: EmailAccount, not_found: set[str],
    refusal: str | None,
) -> PushResult:
    key = match_key(row.email)
    if not isinstance(key, str):
        return PushResult(row.row_id, now, None,
                          f"Not suppressed in dotdigital: not a valid email address "
                          f"({format_date(now)}).")
    suppressed_on = row.suppressed_on or now
    if refusal is not None:
        return PushResult(row.row_id, now, suppressed_on,
                          f"Not suppressed in dotdigital: dotdigital refused the address "
                          f"({refusal}) ({format_date(now)}).")
    if key in not_found:
        return PushResult(row.row_id, now, suppressed_on,
                          f"Not suppressed in dotdigital: {account.name} has no contact with "
                          f"this address ({format_date(now)}).")
    return PushResult(row.row_id, now, suppressed_on, None)

