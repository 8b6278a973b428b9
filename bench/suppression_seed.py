"""The SuppressionLists benchmark's data: the generator's data set with its dotdigital contacts
and Email Suppression rows replaced (see ``bench.suppression_sync`` for what is made).

``python -m bench.suppression_seed --file SEED --suppressions N [--resubscribe-share S]
[--request-share R] [--seed X] --made OUT`` rewrites the seed file in place and writes what it
made to ``OUT``. It runs in its own process: the data set of a large run takes hundreds of MB
while it is rewritten, which the benchmark's own process then never holds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.datagen.dotdigital_accounts import SUPPRESSION_REASONS
from emulators.datagen.people import Person
from emulators.datagen.suppression_demo import (
    ORIGIN_DOTDIGITAL,
    REQUEST_REASONS,
    DotdigitalSide,
    _row,
    key,
)
from emulators.dotdigital.contact_model import is_valid_email
from shared.domain.model import SyncType

AS_OF = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)  # the generator's default date
# The generator's mix: mostly unsubscribes, then suppressed-by-you, hard bounces, complaints...
REASON_WEIGHTS = (50, 6, 10, 4, 3, 3, 12, 3, 4, 5)
CRM_TABLES = ("contacts", "leads", "accounts")


@dataclass(frozen=True, slots=True)
class SuppressionSeed:
    suppressions: int
    resubscribe_share: float
    request_share: float
    seed: int

    def apply(self, dataset: dict[str, Any]) -> dict[str, int]:
        """Replace the data set's suppression state with the benchmark's; returns what it made."""
        rng = random.Random(self.seed)
        tables = dataset["dataverse"]["tables"]
        dotdigital = dataset["dotdigital"]["accounts"]
        email_accounts = tables["ec_emailaccounts"]
        for schedule in tables["ec_syncschedules"]:
            manual = schedule["ec_synctype"] != SyncType.SUPPRESSION_LISTS
            schedule["ec_intervalminutes"] = 0 if manual else schedule["ec_intervalminutes"]
            schedule["ec_syncnow"] = not manual
        for account in dotdigital:
            account.update(contacts=[], suppressions=[], campaigns=[])
        crm = _crm_people(tables, rng)
        sides = [DotdigitalSide(rng, account) for account in dotdigital]
        rows: list[dict[str, Any]] = []
        flagged: set[str] = set()  # addresses an earlier sync left flagged
        option_on = [bool(row["ec_updatedonotbulkemail"]) for row in email_accounts]
        made = {"suppressions": 0, "matched": 0, "resubscribers": 0, "requests": 0}
        requests = round(self.suppressions * self.request_share)
        for index in range(self.suppressions):
            slot = index % len(sides)
            at = _whole(AS_OF - dt.timedelta(days=rng.uniform(1, 365)))
            matched = index % 2 == 0
            person = next(crm) if matched else _nobody(index)
            reason = rng.choices(SUPPRESSION_REASONS, REASON_WEIGHTS)[0]
            if matched and made["requests"] < requests:
                reason = REQUEST_REASONS[made["requests"] % len(REQUEST_REASONS)]
                row = _row(rng, email_accounts[slot], person.email, reason, at, ORIGIN_DOTDIGITAL)
                row["ec_requestresubscribe"] = True
                rows.append(row)
                made["requests"] += 1
                if option_on[slot]:
                    flagged.add(key(person.email))
            if not matched and index % 10 == 1:
                sides[slot].account["suppressions"].append(
                    {"email": person.email, "reason": reason, "dateRemoved": _iso(at)})
            else:
                sides[slot].suppress(person, reason, at)
            made["suppressions"] += 1
            made["matched"] += matched
        for index in range(round(self.suppressions * self.resubscribe_share)):
            slot = index % len(sides)
            person = next(crm)
            suppressed = _whole(AS_OF - dt.timedelta(days=rng.uniform(3, 40)))
            again = _whole(AS_OF - dt.timedelta(seconds=rng.uniform(60, 86_340)))
            sides[slot].resubscribe(person, suppressed, again)
            rows.append(_row(rng, email_accounts[slot], person.email, "Unsubscribed", suppressed,
                             ORIGIN_DOTDIGITAL))
            if option_on[slot]:
                flagged.add(key(person.email))
            made["resubscribers"] += 1
        tables["ec_emailsuppressions"] = rows
        for table in CRM_TABLES:
            for record in tables[table]:
                record["donotbulkemail"] = key(record.get("emailaddress1")) in flagged
        return made


def _crm_people(tables: dict[str, Any], rng: random.Random) -> Iterator[Person]:
    """Dynamics addresses (contacts, leads, accounts), each once, in a random order."""
    seen: set[str] = set()
    addresses = []
    for table in CRM_TABLES:
        for record in tables[table]:
            address = record.get("emailaddress1")
            # Only addresses dotdigital accepts: the generator also makes malformed ones.
            valid = isinstance(address, str) and is_valid_email(address.strip())
            if valid and key(address) not in seen:
                seen.add(key(address))
                addresses.append(address.strip())
    rng.shuffle(addresses)
    for address in addresses:
        yield Person(first="Bench", last="Person", email=address, style="plain")
    raise SystemExit("not enough Dynamics addresses: raise --contacts")


def _nobody(index: int) -> Person:
    return Person(first="No", last=f"Body{index}", email=f"nobody.{index}@suppressed.example.org",
                  style="plain")


def _whole(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suppression_seed", description=__doc__)
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--made", required=True, type=Path)
    parser.add_argument("--suppressions", type=int, required=True)
    parser.add_argument("--resubscribe-share", type=float, default=0.05)
    parser.add_argument("--request-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    dataset = json.loads(args.file.read_text(encoding="utf-8"))
    made = SuppressionSeed(args.suppressions, args.resubscribe_share, args.request_share,
                           args.seed).apply(dataset)
    with args.file.open("w", encoding="utf-8") as handle:
        json.dump(dataset, handle, ensure_ascii=False, separators=(",", ":"))
    args.made.write_text(json.dumps(made), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
