"""The ribbon API's enrolment call for 1, 25 and 200 contacts: response time and requests.

``python -m bench.enrolment_api [--sizes 1,25,200] [--processing-seconds 0] [--repeat 3]``

A local stack (emulators, Azurite, the app's services in this process) with one email account,
one active and enabled program, and Dynamics contacts of which half are unknown to dotdigital
(the call creates them first). Each size enrols fresh contacts through the API's function with a
user token from the Entra emulator, as the ribbon dialog does (only the HTTP hop is left out).
dotdigital's enrolment processing time is the emulator's ``enrolment_processing_seconds``
(``--processing-seconds``; the real service's is not documented): with 0 the figure is the
connector's own work plus one status poll. Prints one JSON object: per size, the median seconds
of ``--repeat`` calls and the Dataverse and dotdigital requests per enrolled record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import azure.functions as func

from devtools.enrol_demo import enable_active_programs, user_token
from devtools.local_stack import LocalStack
from shared.entrypoints import ribbon_api
from tests.e2e.conftest import stack_for
from tests.e2e.org import Org

PROGRAM = 21


def build(contacts: int) -> tuple[dict[str, Any], list[str]]:
    org = Org(email_accounts=1)
    org.dotdigital[0]["programs"] = [{"id": PROGRAM, "name": "Welcome", "status": "Active"}]
    ids = []
    for index in range(contacts):
        email = f"person{index}@example.com"
        if index % 2 == 0:
            org.dotdigital[0]["contacts"].append({"email": email, "optInType": "Single"})
        ids.append(org.add_crm("contacts", email))
    return org.dataset(), ids


def served(stack: LocalStack) -> dict[str, int]:
    return {name: int(stack.cluster.servers[name].stats.snapshot()["requests"])
            for name in ("dataverse", "dotdigital")}


def call(bearer: str, ids: list[str]) -> dict[str, Any]:
    body = json.dumps({"entity": "contact", "ids": ids, "programs": [PROGRAM]}).encode()
    request = func.HttpRequest("POST", "https://localhost/api/enrolments",
                               headers={"Authorization": f"Bearer {bearer}"}, body=body)
    response = ribbon_api.enrol_records(request)
    if response.status_code != 200:
        raise SystemExit(f"the API answered {response.status_code}: {response.get_body()!r}")
    answer: dict[str, Any] = json.loads(response.get_body())
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.enrolment_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,25,200")
    parser.add_argument("--processing-seconds", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if any(not 1 <= size <= 200 for size in sizes) or args.repeat < 1:
        parser.error("sizes are 1 to 200 records; --repeat at least 1")
    dataset, ids = build(sum(sizes) * args.repeat)
    results: dict[str, Any] = {}
    with stack_for(dataset) as stack:
        stack.dotdigital.post("programs/config", {
            "enrolment_processing_seconds": args.processing_seconds,
            "enrolments_per_hour": 10_000})
        bearer = user_token(stack)
        enable_active_programs(stack, bearer)  # mirrored, then enabled as an admin would
        fresh = iter(ids)
        for size in sizes:
            seconds, per_record = [], {"dataverse": 0.0, "dotdigital": 0.0}
            for _ in range(args.repeat):
                chunk = [next(fresh) for _ in range(size)]
                before, started = served(stack), time.perf_counter()
                answer = call(bearer, chunk)
                seconds.append(time.perf_counter() - started)
                after = served(stack)
                enrolled = sum(1 for r in answer["results"] if r["outcome"] == "enrolled")
                if enrolled != size:
                    raise SystemExit(f"{size} records: {enrolled} enrolled: {answer}")
                for name in per_record:
                    per_record[name] += (after[name] - before[name]) / size / args.repeat
            results[str(size)] = {
                "seconds_median": round(statistics.median(seconds), 3),
                "seconds": [round(s, 3) for s in seconds],
                "dataverse_requests_per_record": round(per_record["dataverse"], 3),
                "dotdigital_requests_per_record": round(per_record["dotdigital"], 3),
            }
    print(json.dumps({"processing_seconds": args.processing_seconds, "repeat": args.repeat,
                      "sizes": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
