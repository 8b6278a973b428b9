"""The SuppressionLists sync under faults: with 10% 429s, 5% 503s and 2% connection resets on
both services, Dynamics ends exactly as in the fault-free run of the same data."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from devtools.local_stack import LocalStack
from devtools.run_report import build_report
from emulators.datagen import generate_dataset
from shared.domain.model import SyncType
from tests.e2e.conftest import stack_for
from tests.e2e.test_faults import FAULTS

# Statuses and Notes carry the minute they were written; two runs are minutes apart.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
# Dates the connector stamps with its own clock (the rest come from dotdigital's data).
_OWN_CLOCK = {"ec_pushedon", "ec_resubscriptionrequestedon"}


def _text(value: Any, started: dt.datetime) -> str:
    """The value, with the moments of the run itself masked (a Request Resubscribe granted at
    once is dated when the run made it)."""
    if not isinstance(value, str):
        return repr(value)
    try:
        if dt.datetime.fromisoformat(value.replace("Z", "+00:00")) >= started:
            return "<during the run>"
    except ValueError:
        pass
    return _DATE.sub("<date>", value)


def outcome(stack: LocalStack, started: dt.datetime) -> dict[str, Any]:
    """What the sync decided in Dynamics, free of ids and of the minute it ran."""
    names = {}
    for entity_set, key in (("contacts", "contactid"), ("leads", "leadid"),
                            ("accounts", "accountid"), ("ec_emailsuppressions",
                                                        "ec_emailsuppressionid")):
        for row in stack.dataverse.rows(entity_set):
            address = row.get("emailaddress1") or row.get("ec_emailaddress")
            names[str(row[key])] = f"{entity_set}:{address}:{row.get('_ec_emailaccountid_value')}"
    suppressions = sorted(
        tuple(sorted((k, _text(v, started)) for k, v in row.items()
                     if k.startswith("ec_") and k not in _OWN_CLOCK
                     and k != "ec_emailsuppressionid") + [("state", row.get("statecode"))])
        for row in stack.dataverse.rows("ec_emailsuppressions")
    )
    notes = sorted((names.get(str(n.get("_objectid_value")), "?"),
                    _text(n.get("subject"), started), _text(n.get("notetext"), started))
                   for n in stack.dataverse.rows("annotations"))
    flags = sorted(f"{names[str(row[key])]}={row.get('donotbulkemail')}"
                   for entity_set, key in (("contacts", "contactid"), ("leads", "leadid"),
                                           ("accounts", "accountid"))
                   for row in stack.dataverse.rows(entity_set))
    return {"suppressions": suppressions, "notes": notes, "flags": flags}


def test_with_faults_on_both_services_the_suppression_sync_ends_as_without_them() -> None:
    dataset = generate_dataset(contacts=300, accounts=2, seed=13)
    with stack_for(dataset) as clean:
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        clean.request_sync_now(sync_type=SyncType.SUPPRESSION_LISTS)
        clean.run_until_complete(timeout_s=60)
        expected = outcome(clean, started)
        assert build_report(clean)["ok"]
    assert expected["notes"] and expected["suppressions"]
    with stack_for(dataset, SYNC_READER_MAX_SECONDS="5") as faulty:
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for admin in (faulty.dataverse, faulty.dotdigital):
            admin.set_faults(FAULTS, seed=7)
        faulty.request_sync_now(sync_type=SyncType.SUPPRESSION_LISTS)
        completion = faulty.run_until_complete(timeout_s=120)
        report = build_report(faulty, completion)
        assert outcome(faulty, started) == expected
        injected = report["faults_injected"]
        assert injected["dataverse"] > 0 and injected["dotdigital"] > 0, report
        assert report["dead_lettered"] == 0, report
        assert report["suppression_total"]["failed"] == 0, report
        assert report["suppression_total"]["unfinished_runs"] == 0, report
