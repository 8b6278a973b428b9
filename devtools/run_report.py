"""The summary of a local run (``make run ONCE=1``): per email account and in total, for the
opt-in sync here and for the SuppressionLists sync in ``suppression_report``.

Per account, from the sync state of the opt-in runs the timer started (found in the run
journal): records read, batches, records changed per table, items skipped by reason, items
failed. In total, also the requests the emulators served to the app (admin calls excluded),
throttled responses, dead-lettered messages (the broker's, and those the app parked in the opt-in
queue's ``-deadletter`` queue, each with its reason) and the duration. The connectivity check is
the one in the last sync cycle's journal summary. The same dict is printed as a table and written
as JSON; ``ok`` is false when any run is unfinished, any item failed, any message was
dead-lettered, the connectivity check failed or a timer tick failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devtools.engagement_report import HEADERS as ENGAGEMENT_HEADERS
from devtools.engagement_report import engagement_rows, engagement_totals
from devtools.local_stack import Completion, LocalStack
from devtools.suppression_report import HEADERS as SUPPRESSION_HEADERS
from devtools.suppression_report import suppression_rows, suppression_totals
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import RunStatus

TABLES = ("contact", "lead", "account")
SKIPPED = ("invalid_email", "unknown_opt_in", "unmatched")
SYSTEMS = ("dotdigital", "dataverse", "entra")


def _blank_totals() -> dict[str, Any]:
    return {
        "runs": 0, "unfinished_runs": 0, "records_read": 0, "batches": 0,
        "changed": dict.fromkeys(TABLES, 0), "skipped": dict.fromkeys(SKIPPED, 0), "failed": 0,
    }


def _add(totals: dict[str, Any], counters: dict[str, int], batches: int, finished: bool) -> None:
    totals["runs"] += 1
    totals["unfinished_runs"] += int(not finished)
    totals["records_read"] += counters.get("items", 0)
    totals["batches"] += batches
    totals["failed"] += counters.get("failed", 0)
    for table in TABLES:
        totals["changed"][table] += counters.get(f"changed_{table}", 0)
    for reason in SKIPPED:
        totals["skipped"][reason] += counters.get(reason, 0)


def optin_run_ids(stack: LocalStack) -> dict[str, list[str]]:
    """Per email account id, the opt-in runs the timer started or resumed, oldest first."""
    found: dict[str, list[str]] = {}
    for cycle in stack.journal.runs("sync-cycle"):
        for item in cycle.get("optin", []):  # type: ignore[attr-defined]
            progress = item.get("progress") or {}
            run_id = progress.get("run_id")
            runs = found.setdefault(item["account"], [])
            if run_id and run_id not in runs:
                runs.append(run_id)
    return found


def build_report(stack: LocalStack, completion: Completion | None = None) -> dict[str, Any]:
    dry_run = stack.values.get("SYNC_DRY_RUN", "false").strip().lower() in ("true", "1", "yes")
    run_ids = optin_run_ids(stack)
    accounts, total = [], _blank_totals()
    for row in sorted(stack.email_accounts(), key=lambda r: str(r.get("ec_name"))):
        account_id = str(row["ec_emailaccountid"])
        totals = _blank_totals()
        key = optin_sync_key(account_id, dry_run=dry_run)
        for run_id in run_ids.get(account_id, []):
            run = stack.state.get_run(key, run_id)
            if run is None:
                continue
            for target in (totals, total):
                _add(target, dict(run.counters), run.batches_published,
                     run.status is RunStatus.COMPLETED)
        accounts.append({"email_account": row.get("ec_name"), "email_account_id": account_id,
                         **totals})
    per_account, suppression_total = suppression_totals(
        stack.journal, stack.state, [str(a["email_account_id"]) for a in accounts],
        dry_run=dry_run,
    )
    engaged, engagement_total = engagement_totals(
        stack.journal, stack.state, [str(a["email_account_id"]) for a in accounts],
        dry_run=dry_run,
    )
    for account in accounts:
        account["suppression"] = per_account[str(account["email_account_id"])]
        account["engagement"] = engaged[str(account["email_account_id"])]
    connectivity = last_connectivity(stack)
    stats = {name: stack.cluster.servers[name].stats.snapshot() for name in SYSTEMS}
    counters = stack.counters()
    # Where each one waits, in Service Bus's terms: the queue's own dead-letter sub-queue
    # (the broker's), or the queue the app parks messages in.
    queues = set(getattr(stack, "queues", (stack.optin_queue,)))
    dead_letters = [
        {"message_id": m.message_id, "session_id": m.session_id,
         "queue": f"{m.queue}/$deadletterqueue" if m.queue in queues else m.queue,
         "reason": m.dead_letter_reason, "description": m.dead_letter_description}
        for m in stack.dead_letters()
    ]
    timer_failures = completion.timer_failures if completion else []
    connectivity_ok = bool(connectivity and connectivity.get("ok"))
    ok = (connectivity_ok and total["unfinished_runs"] == 0 and total["failed"] == 0
          and suppression_total["unfinished_runs"] == 0 and suppression_total["failed"] == 0
          and engagement_total["unfinished_runs"] == 0 and engagement_total["failed"] == 0
          and not dead_letters and counters["dead_lettered"] == 0 and not timer_failures)
    return {
        "ok": ok,
        "dry_run": dry_run,
        # The sync's own time when known; else since the dev host started.
        "seconds": round(completion.seconds if completion else stack.seconds(), 2),
        "accounts": accounts,
        "total": total,
        "suppression_total": suppression_total,
        "engagement_total": engagement_total,
        "requests": {name: stats[name]["requests"] for name in SYSTEMS},
        "throttled": {name: stats[name]["throttled"] for name in SYSTEMS},
        "faults_injected": {name: stats[name]["faults_injected"] for name in SYSTEMS},
        "dead_lettered": len(dead_letters),
        "dead_letters": dead_letters,
        "timer_ticks": completion.ticks if completion else 0,
        "timer_failures": timer_failures,
        "functions": counters,
        "connectivity": connectivity,
    }


def last_connectivity(stack: LocalStack) -> dict[str, Any] | None:
    """The connectivity check of the last sync cycle (part of its journal summary); None
    before the first cycle."""
    cycles = stack.journal.runs("sync-cycle")
    found = cycles[-1].get("connectivity") if cycles else None
    return found if isinstance(found, dict) else None


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def format_report(report: dict[str, Any]) -> str:
    headers = ["email account", "runs", "read", "batches", "contacts", "leads", "accounts",
               "invalid email", "unknown opt-in", "unmatched", "failed"]

    def row(name: str, totals: dict[str, Any]) -> list[object]:
        changed, skipped = totals["changed"], totals["skipped"]
        runs = f"{totals['runs']}" + (f" ({totals['unfinished_runs']} unfinished)"
                                      if totals["unfinished_runs"] else "")
        return [name, runs, totals["records_read"], totals["batches"], *changed.values(),
                *skipped.values(), totals["failed"]]

    rows = [row(str(a["email_account"]), a) for a in report["accounts"]]
    rows.append(row("TOTAL", report["total"]))
    requests, throttled = report["requests"], report["throttled"]
    suppressions = report.get("suppression_total", {})
    changed_total = sum(report["total"]["changed"].values()) + sum(
        suppressions.get(name, 0) for name in ("rows_created", "rows_updated", "rows_removed",
                                               "dnbe_set", "dnbe_cleared", "notes"))
    per_1000 = (f"{1000 * requests['dataverse'] / changed_total:.1f}" if changed_total else "-")
    summary = _table(
        ["dotdigital requests", "dataverse requests", "per 1000 changed", "throttled",
         "dead-lettered", "timer ticks", "seconds"],
        [[requests["dotdigital"], requests["dataverse"], per_1000,
          throttled["dotdigital"] + throttled["dataverse"], report["dead_lettered"],
          report["timer_ticks"], report["seconds"]]],
    )
    parts = [
        "opt-in sync" + (" (DRY RUN: changes are what would be written)" if report["dry_run"]
                         else ""),
        _table(headers, rows), "",
        "suppression lists sync" + (" (DRY RUN)" if report["dry_run"] else ""),
        _table(SUPPRESSION_HEADERS, suppression_rows(report)), "",
        "engagement sync" + (" (DRY RUN)" if report["dry_run"] else ""),
        _table(ENGAGEMENT_HEADERS, engagement_rows(report)), "", summary,
    ]
    for letter in report["dead_letters"]:
        parts.append(f"dead letter {letter['message_id']} ({letter['session_id']}) in "
                     f"{letter['queue']}: {letter['reason']}: {letter['description']}")
    connectivity = report["connectivity"] or {}
    for check in connectivity.get("accounts", []):
        if check.get("error"):
            parts.append(f"connectivity: {check['email_account']}: {check['error']}")
    if connectivity.get("note"):
        parts.append(f"connectivity: {connectivity['note']}")
    for failure in report["timer_failures"]:
        parts.append(f"timer tick failed: {failure}")
    parts.append("")
    parts.append("result: " + ("OK" if report["ok"] else "FAILED"))
    return "\n".join(parts)
