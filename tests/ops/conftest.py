"""Fixtures for the operator console's tests: a local stack with a small organisation, and the
console run in-process against it (``console(*args) -> (exit code, stdout, stderr)``).

The stack is started once per test module; the console finds it as ``python -m ops`` in a
second terminal would find ``make run``'s: through the app settings the stack put in the
environment, or through its stack file (``--settings``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.local_stack import LocalStack
from ops.cli import main
from shared.domain.model import SyncStatus, SyncType
from tests.e2e.conftest import stack_for, suppress
from tests.e2e.org import Org, add_suppression_schedule

Console = Callable[..., tuple[int, str, str]]


def run_console(*args: str) -> tuple[int, str, str]:
    """``python -m ops ARGS`` in-process: its exit code, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(args))
    return code, stdout.getvalue(), stderr.getvalue()


def small_org() -> Org:
    """Brand 1 and Brand 2 with opt-in contacts (some in CRM with a lower type, one nowhere in
    CRM) and a campaign with activity for Brand 1; Brand 3 with nothing to sync (a place for
    made-up state); Brand 4 deactivated. Every active account has ContactOptIn and
    SuppressionLists rows; Brand 3 also a deactivated Engagement row."""
    org = Org(email_accounts=4)
    for email, opt_in in (("ann@example.com", "Double"), ("bob@example.com", "Single"),
                          ("cat@example.com", "VerifiedDouble"), ("dan@example.com", "Single"),
                          ("eve@example.com", "Double")):
        org.add_dotdigital(0, email, opt_in)
    org.add_crm("contacts", "ann@example.com", "Single")
    org.add_crm("contacts", "bob@example.com")
    org.add_crm("leads", "cat@example.com", "Unknown")
    org.add_crm("accounts", "dan@example.com", "Double")  # already higher: unchanged
    for email in ("kim@example.com", "lou@example.com", "max@example.com"):
        org.add_dotdigital(1, email, "Double")
        org.add_crm("contacts", email, "Single")
    for email in ("sue@example.com", "tom@example.com"):
        org.add_dotdigital(0, email, "Single")
        org.add_crm("contacts", email, "Single")
    # A week ago: recent for the retention, whenever the tests run.
    sent = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=7)

    def at(minutes: int) -> str:
        return (sent + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    org.dotdigital[0]["campaigns"] = [{
        "id": 10, "name": "Spring sale", "status": "Sent", "dateSent": at(0),
        "activities": [
            {"email": "ann@example.com", "opens": [{"date": at(60)}],
             "clicks": [{"date": at(65), "url": "https://shop.example/a"}]},
            {"email": "bob@example.com"},
        ]}]
    for account in range(3):
        org.add_schedule(account)
        add_suppression_schedule(org, account)
    org.tables["ec_syncschedules"].append({
        "ec_syncscheduleid": str(uuid.uuid4()), "ec_name": "Brand 3 · Engagement",
        "_ec_emailaccountid_value": org.ids[2], "ec_synctype": int(SyncType.ENGAGEMENT),
        "ec_intervalminutes": 0, "ec_windowstart": None, "ec_windowend": None,
        "ec_status": int(SyncStatus.NONE), "ec_syncnow": False, "statecode": 1,
        "statuscode": 2,
    })
    org.tables["ec_emailaccounts"][3].update({"statecode": 1, "statuscode": 2})
    return org


@dataclass
class OpsStack:
    stack: LocalStack
    org: Org
    stack_file: Path

    def account_id(self, index: int) -> str:
        return self.org.ids[index]


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    """A started local stack on ``small_org()``, advertised in a stack file as ``make run``
    does; Brand 1 has suppressions in dotdigital."""
    org = small_org()
    with stack_for(org.dataset()) as stack:
        for email, reason in (("sue@example.com", "Unsubscribed"),
                              ("tom@example.com", "HardBounced")):
            suppress(stack, 0, email, reason)
        stack_file = tmp_path_factory.mktemp("ops") / "local-stack.json"
        stack.advertise(stack_file)
        yield OpsStack(stack, org, stack_file)


@pytest.fixture
def console(ops_stack: OpsStack) -> Console:
    """The console against ``ops_stack`` (found through the environment the stack set)."""
    return run_console
