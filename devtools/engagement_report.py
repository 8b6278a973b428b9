"""The Engagement part of the local run report: per email account, events read by kind,
events stored for the first time, events the store already had, and items failed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from devtools.suppression_report import started_runs
from shared.domain.engagement import EventKind
from shared.services.engagement.reader import engagement_sync_key
from shared.services.ports import RunStatus

COUNTERS = ("items", *(f"read_{kind}" for kind in EventKind), "written", "existing", "failed")
HEADERS = ("email account", "runs", "read", *(str(kind) for kind in EventKind), "written",
           "already stored", "failed")


def engagement_totals(
    journal: Any, state: Any, accounts: Iterable[str], *, dry_run: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per email account id, and in total."""
    started = started_runs(journal, "engagement")
    per_account: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {"runs": 0, "unfinished_runs": 0, **dict.fromkeys(COUNTERS, 0)}
    for account in accounts:
        totals: dict[str, Any] = {"runs": 0, "unfinished_runs": 0, **dict.fromkeys(COUNTERS, 0)}
        for run_id in dict.fromkeys(run_id for run_id, _ in started.get(account, [])):
            run = state.get_run(engagement_sync_key(account, dry_run=dry_run), run_id)
            if run is None:
                continue
            for target in (totals, total):
                target["runs"] += 1
                target["unfinished_runs"] += int(run.status is not RunStatus.COMPLETED)
                for name in COUNTERS:
                    target[name] += run.counters.get(name, 0)
        per_account[account] = totals
    return per_account, total


def engagement_rows(report: Mapping[str, Any]) -> list[Sequence[object]]:
    def row(name: str, totals: Mapping[str, Any]) -> list[object]:
        return [name, totals["runs"], totals["items"],
                *(totals[f"read_{kind}"] for kind in EventKind), totals["written"],
                totals["existing"], totals["failed"]]

    rows: list[Sequence[object]] = [row(str(a["email_account"]), a["engagement"])
                                    for a in report["accounts"]]
    rows.append(row("TOTAL", report["engagement_total"]))
    return rows
