"""``make run``: the connector on the local emulators, Azurite and the dev host.

Starts a ``LocalStack`` (emulators seeded with a demo organisation, Azurite, the dev host running
this repo's ``function_app.py``) and shows what the app does until interrupted: the timers fire
on their schedules, the HTTP routes are served, and a stand-in CRM form (its URLs are printed)
opens the Automation Programs dialog and the Engagement timeline of the demo's most engaged
contacts. While it runs, ``<run dir>/local-stack.json`` holds its settings, so that
``python -m ops`` in another terminal finds it.

With ``--once``: ticks Sync Now on every email account's ContactOptIn schedule (as an
administrator would in CRM; the schedules are manual by default), runs the sync timer until every
run is applied and the queues are empty, prints a summary table per email account and in total
(records read, batches, records changed per table, skipped by reason, failed, dotdigital and
Dataverse requests, throttled responses, dead-lettered messages, duration), writes the same as
JSON to ``<run dir>/report.json`` and exits 1 when anything failed or was dead-lettered.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devtools.crm_page.server import CrmPage, PageRecord
from devtools.enrol_demo import enable_active_programs, enrol_demo, format_demo, user_token
from devtools.local_stack import ROOT, TIMER, LocalStack, StackError
from devtools.run_report import build_report, format_report
from shared.domain.model import SyncType
from shared.errors import ConfigError

logger = logging.getLogger("run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.run_local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="local.settings.json")
    parser.add_argument("--once", action="store_true", help="one cycle, a report, then exit")
    parser.add_argument("--contacts", type=int, default=3000, help="demo contacts")
    parser.add_argument("--accounts", type=int, default=2, help="demo email accounts")
    parser.add_argument("--run-dir", default=".run")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="--once: seconds the sync may take before the run fails")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)-10s %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("azure", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    run_dir = ROOT / args.run_dir
    # A fresh queue directory: messages of an earlier run would be delivered to this one.
    queue_dir = run_dir / "queues"
    if queue_dir.exists():
        for path in sorted(queue_dir.iterdir()):
            path.unlink()
    try:
        return _run(args, run_dir)
    except ConfigError as error:
        # Most often a local.settings.json made before a release added a setting.
        print(f"error: {error}\n(local.settings.json lacks what local.settings.sample.json "
              "has: add the missing setting, or delete the file to get a fresh copy)",
              file=sys.stderr)
        return 2


CRM_PAGE_PORT = 7310  # allowed by local.settings.sample.json's Host.CORS
# Where the running stack's settings are, for `python -m ops` in a second terminal.
STACK_FILE = "local-stack.json"


def _run(args: argparse.Namespace, run_dir: Path) -> int:
    with LocalStack(
        contacts=args.contacts, email_accounts=args.accounts, settings_file=ROOT / args.settings,
        run_dir=run_dir, emulator_dir=ROOT / ".emulators", timers=not args.once,
        http=not args.once,
    ) as stack:
        stack.advertise(run_dir / STACK_FILE)
        if args.once:
            return _once(stack, run_dir, args.timeout)
        logger.info("triggering %s now (then on its schedule)", TIMER)
        # The demo's schedules run the opt-in and Engagement syncs at once (the timeline's
        # events come from the latter); SuppressionLists waits for a Sync Now.
        stack.trigger_timer()
        page = _crm_page(stack)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        logger.info("running until Ctrl-C")
        stop.wait()
        logger.info("stopping")
        if page is not None:
            page.__exit__(None, None, None)
    return 0


def _crm_page(stack: LocalStack) -> CrmPage | None:
    """The stand-in for a CRM form and grid with the Automation Programs button, on the origin
    that local.settings.sample.json's Host.CORS allows; its URLs are printed."""
    if stack.host.http is None:
        return None
    enable_active_programs(stack, user_token(stack))
    engaged = engaged_addresses(stack.dataset)
    contacts = sorted(stack.dataverse.rows("contacts"),
                      key=lambda row: engaged.get(str(row.get("emailaddress1")).lower(), (0, 0)),
                      reverse=True)
    records = [PageRecord("contact", str(row["contactid"]),
                          f"{row.get('firstname') or ''} {row.get('lastname') or ''}".strip(),
                          row.get("emailaddress1"))
               for row in contacts[:5]]
    records += [PageRecord("lead", str(row["leadid"]), str(row.get("subject") or "Lead"),
                           row.get("emailaddress1"))
                for row in stack.dataverse.rows("leads")[:5]]
    page = CrmPage(api_base_url=f"{stack.host.http.base_url}/api",
                   entra_url=stack.cluster.entra_server.base_url,
                   ca_bundle=stack.cluster.ca_bundle, records=records, port=CRM_PAGE_PORT)
    page.__enter__()
    print(f"Automation Programs on a stand-in CRM contact form: "
          f"{page.url('contact', record_id=records[0].id)}", flush=True)
    print(f"... and on a lead grid: {page.url('lead', grid=True)}", flush=True)
    print(f"Engagement timeline (its button on the form; the Engagement sync is filling it): "
          f"{page.url('contact', record_id=records[0].id)}", flush=True)
    return page


def engaged_addresses(dataset: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Lower-cased address → (kinds of engagement, events) the demo seed gives it, so that the
    page shows the people with the fullest timelines first."""
    kinds: dict[str, set[str]] = {}
    events: dict[str, int] = {}
    for account in dataset.get("dotdigital", {}).get("accounts", []):
        for campaign in account.get("campaigns", []):
            for row in campaign.get("activities", []):
                email = str(row["email"]).lower()
                found = kinds.setdefault(email, {"send"})
                found.update(key for key in ("opens", "clicks", "pageViews") if row.get(key))
                events[email] = events.get(email, 0) + 1 + sum(
                    len(row.get(key) or ()) for key in ("opens", "clicks", "pageViews"))
        for survey in account.get("surveys", []):
            for response in survey.get("responses", []):
                email = str(response["email"]).lower()
                kinds.setdefault(email, set()).add("form")
                events[email] = events.get(email, 0) + 1
    return {email: (len(found), events[email]) for email, found in kinds.items()}


def _once(stack: LocalStack, run_dir: Path, timeout_s: float) -> int:
    for sync_type in (SyncType.CONTACT_OPT_IN, SyncType.SUPPRESSION_LISTS,
                      SyncType.ENGAGEMENT):
        stack.request_sync_now(sync_type=sync_type)
    completion = None
    try:
        completion = stack.run_until_complete(timeout_s=timeout_s)
    except StackError as error:
        logger.error("%s", error)
    report = build_report(stack, completion)
    if completion is None:
        report["ok"] = False
    report["ribbon_api"] = enrol_demo(stack)
    report["ok"] = report["ok"] and report["ribbon_api"]["ok"]
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    print()
    print(format_report(report))
    print(format_demo(report["ribbon_api"]))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
