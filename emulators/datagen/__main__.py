"""``python -m emulators.datagen --contacts 20000 --accounts 3 --seed 1 --out FILE``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emulators.datagen.dataset import generate_dataset, secrets_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.datagen", description=__doc__)
    parser.add_argument("--contacts", type=int, required=True, help="Dynamics contact rows")
    parser.add_argument("--accounts", type=int, default=2, help="dotdigital accounts")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--leads", type=int, help="lead rows (default contacts/5)")
    parser.add_argument("--crm-accounts", type=int, help="account rows (default contacts/10)")
    parser.add_argument("--activities-per-campaign", type=int, default=200)
    parser.add_argument("--out", required=True, help="seed file for `python -m emulators serve`")
    parser.add_argument("--secrets-out", help="also write {app setting: password} here")
    args = parser.parse_args(argv)
    try:
        dataset = generate_dataset(
            contacts=args.contacts, accounts=args.accounts, seed=args.seed, leads=args.leads,
            crm_accounts=args.crm_accounts, activities_per_campaign=args.activities_per_campaign,
        )
    except ValueError as exc:
        parser.error(str(exc))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        json.dump(dataset, handle, ensure_ascii=False, separators=(",", ":"))
    if args.secrets_out:
        Path(args.secrets_out).write_text(json.dumps(secrets_for(dataset), indent=2))
    tables = dataset["dataverse"]["tables"]
    summary = {name: len(rows) for name, rows in tables.items()}
    summary["dotdigital_contacts"] = sum(
        len(account["contacts"]) for account in dataset["dotdigital"]["accounts"]
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
