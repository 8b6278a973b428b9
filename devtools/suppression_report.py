"""The SuppressionLists part of the local run report (``make run ONCE=1``), per email account:
suppressions read, Email Suppression rows created / updated / removed, records whose Do not bulk
email was set / cleared, Notes, CRM rows pushed to dotdigital, Request Resubscribe outcomes, and
items failed. Read from the sync state of the runs the timer started (named in the run journal)
and from the CRM step's counts the journal keeps for each run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from shared.services.ports import RunState, RunStatus, SyncKey
from shared.services.suppression.reader import suppression_sync_key

APPLIED = ("items", "rows_created", "rows_updated", "rows_removed", "dnbe_set", "dnbe_cleared",
           "notes", "invalid_email", "unknown_reason", "failed")
HEADERS = ("email account", "runs", "read", "rows created", "rows updated", "rows removed",
           "dnbe set", "dnbe cleared", "notes", "invalid", "unknown reason", "failed",
           "pushed", "push refused", "requests")


class _Journal(Protocol):
    def runs(self, kind: str) -> list[dict[str, object]]: ...


class _State(Protocol):
    def get_run(self, key: SyncKey, run_id: str) -> RunState | None: ...


def _blank() -> dict[str, Any]:
    return {"runs": 0, "unfinished_runs": 0, **dict.fromkeys(APPLIED, 0), "pushed": 0,
            "push_refused": 0, "requests": {}}


def started_runs(
    journal: _Journal, sync: str = "suppression"
) -> dict[str, list[tuple[str, Mapping[str, int]]]]:
    """Per email account id, the runs of ``sync`` (its name in the cycle journal) the timer
    started, oldest first, with their start-up counts."""
    found: dict[str, list[tuple[str, Mapping[str, int]]]] = {}
    for cycle in journal.runs("sync-cycle"):
        items = cycle.get(sync, [])
        for item in items if isinstance(items, list) else []:
            progress = item.get("progress") or {}
            run_id = progress.get("run_id")
            if not run_id:
                continue
            runs = found.setdefault(item["account"], [])
            extra = progress.get("extra") or {}
            if extra or run_id not in [known for known, _ in runs]:
                runs.append((run_id, extra))
    return found


def suppression_totals(
    journal: _Journal, state: _State, accounts: Iterable[str], *, dry_run: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per email account id, and in total."""
    started = started_runs(journal)
    per_account, total = {}, _blank()
    for account in accounts:
        totals = _blank()
        counted: set[str] = set()
        for run_id, extra in started.get(account, []):
            for target in (totals, total):
                _add_extra(target, extra)
            if run_id in counted:
                continue
            counted.add(run_id)
            run = state.get_run(suppression_sync_key(account, dry_run=dry_run), run_id)
            if run is None:
                continue
            for target in (totals, total):
                target["runs"] += 1
                target["unfinished_runs"] += int(run.status is not RunStatus.COMPLETED)
                for name in APPLIED:
                    target[name] += run.counters.get(name, 0)
        per_account[account] = totals
    return per_account, total


def _add_extra(target: dict[str, Any], extra: Mapping[str, int]) -> None:
    target["pushed"] += extra.get("pushed", 0)
    target["push_refused"] += extra.get("push_not_found", 0) + extra.get("push_invalid", 0)
    for name, count in extra.items():
        if name.startswith("requests_"):
            kind = name.removeprefix("requests_")
            target["requests"][kind] = target["requests"].get(kind, 0) + count


def suppression_rows(report: Mapping[str, Any]) -> list[Sequence[object]]:
    def row(name: str, totals: Mapping[str, Any]) -> list[object]:
        runs = f"{totals['runs']}" + (f" ({totals['unfinished_runs']} unfinished)"
                                      if totals["unfinished_runs"] else "")
        requests = ", ".join(f"{kind} {count}" for kind, count in
                             sorted(totals["requests"].items())) or "-"
        return [name, runs, *(totals[name] for name in APPLIED), totals["pushed"],
                totals["push_refused"], requests]

    rows: list[Sequence[object]] = [
        row(str(account["email_account"]), account["suppression"])
        for account in report["accounts"]
    ]
    rows.append(row("TOTAL", report["suppression_total"]))
    return rows
