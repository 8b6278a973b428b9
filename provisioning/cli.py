"""``python -m provisioning``: plan, check and apply the connector's Dataverse schema.

By default the command applies what the plan finds (idempotently: a second run changes nothing);
``--plan`` only shows it. A plan with a destructive difference is refused unless
``--allow-destructive``, and one with a difference provisioning cannot make is always refused;
a refused plan changes nothing. Exit codes: 0 done, 1 refused or failed, 2 bad input (options,
settings, the schema file, the URL, the credentials).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from provisioning import report, schema_file
from provisioning.apply import apply_plan
from provisioning.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, InputError
from provisioning.metadata_api import MetadataApi
from provisioning.model import DesiredSchema, FoundChoice, FoundTable
from provisioning.plan import Item, make_plan
from provisioning.settings import SETTINGS, Connection, resolve
from shared.adapters.identity.entra import EntraTokenProvider
from shared.errors import (
    AppError,
    AuthFailed,
    ConfigError,
    IntegrationError,
    NotFound,
    System,
)

_SOLUTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parser() -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(
        prog="python -m provisioning",
        description="Create or update the connector's Dataverse tables, columns, choices and "
                    "lookups from infra/dynamics/schema.json.",
    )
    connection = parsed.add_argument_group(
        "connection (each defaults to the app setting in brackets, from the environment or "
        "local.settings.json)")
    connection.add_argument("--dataverse-url", help="environment URL [DATAVERSE_URL]")
    connection.add_argument("--tenant-id", help="Entra ID tenant [ENTRA_TENANT_ID]")
    connection.add_argument("--client-id", help="app registration [ENTRA_CLIENT_ID]")
    connection.add_argument("--client-secret",
                            help="its secret [ENTRA_CLIENT_SECRET]; prefer the setting, a "
                                 "command line is visible to other processes")
    connection.add_argument("--client-certificate", metavar="FILE",
                            help="instead of the secret: the app registration's certificate, "
                                 "PEM (key and certificate) or base64 PKCS#12 "
                                 "[ENTRA_CLIENT_CERTIFICATE, the certificate itself]")
    connection.add_argument("--authority-host", metavar="URL",
                            help="[ENTRA_AUTHORITY_HOST] (default "
                                 "https://login.microsoftonline.com)")
    connection.add_argument("--ca-bundle", metavar="FILE",
                            help="extra CA bundle [OUTBOUND_CA_BUNDLE]")
    connection.add_argument("--settings", type=Path, metavar="FILE",
                            help="local.settings.json to read (default: ./local.settings.json "
                                 "when present)")
    parsed.add_argument("--schema", type=Path, default=schema_file.DEFAULT_PATH, metavar="FILE",
                        help="schema file (default infra/dynamics/schema.json)")
    parsed.add_argument("--plan", action="store_true",
                        help="only show what would change; change nothing")
    parsed.add_argument("--allow-destructive", action="store_true",
                        help="also apply changes that can lose data (type changes, removing "
                             "options in use, shrinking lengths, narrowing ranges)")
    parsed.add_argument("--solution", metavar="UNIQUE_NAME",
                        help="add what is created to this unmanaged solution "
                             "(MSCRM.SolutionUniqueName)")
    parsed.add_argument("--json", action="store_true", help="print the report as JSON")
    return parsed


def main(argv: Sequence[str] | None = None, *, environ: dict[str, str] | None = None,
         cwd: Path | None = None) -> int:
    args = parser().parse_args(argv)
    progress = _progress
    try:
        desired = schema_file.load(args.schema)
        if args.solution is not None and not _SOLUTION.match(args.solution):
            raise InputError(f"--solution {args.solution!r} is not a solution unique name")
        connection = resolve({option: getattr(args, option) for option in SETTINGS},
                             os.environ if environ is None else environ, args.settings,
                             cwd or Path.cwd())
        api = _connect(connection, args.solution, progress)
        items = _plan(desired, api, progress)
    except InputError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AppError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    refused = [item for item in items if item.refusal(args.allow_destructive)]
    if refused:
        progress(f"refused: {', '.join(item.name for item in refused)}; nothing was changed")
    applied = ok = False
    if not refused and not args.plan:
        ok = apply_plan(items, api, desired, progress)
        applied = True
    result = "refused" if refused else ("failed" if applied and not ok else "ok")
    mode = "applied" if applied else "plan only" if args.plan else "refused, nothing changed"
    url = connection.dataverse.url
    if args.json:
        print(report.as_json(items, url=url, mode=mode, result=result,
                             allow_destructive=args.allow_destructive, solution=args.solution,
                             requests=api.stats.requests))
    else:
        print(report.as_text(items, url=url, mode=mode, result=result,
                             allow_destructive=args.allow_destructive))
    return EXIT_OK if result == "ok" else EXIT_FAILED


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _connect(connection: Connection, solution: str | None,
             progress: Callable[[str], None]) -> MetadataApi:
    """A client whose token and environment have been checked with ``WhoAmI``: wrong
    credentials, a wrong or unreachable URL are bad input, not a failed run."""
    tokens = EntraTokenProvider(connection.entra, connection.http)
    scope = connection.dataverse.scope
    url = connection.dataverse.url
    progress(f"signing in to {connection.entra.authority} as {connection.entra.client_id}")
    try:
        tokens.app_token(scope)
    except ConfigError as problem:  # a certificate that cannot be read
        raise InputError(str(problem)) from None
    except IntegrationError as problem:
        raise InputError(f"Entra ID did not issue a token for {scope}: {problem.detail}") \
            from None
    api = MetadataApi(connection.dataverse, connection.http, lambda: tokens.app_token(scope),
                      solution=solution)
    progress(f"connecting to {url}")
    try:
        api.who_am_i()
    except NotFound:
        raise InputError(f"{url} is not a Dataverse environment (no WhoAmI)") from None
    except AuthFailed as problem:
        if problem.status == 403:
            raise  # the application user exists but lacks a role: a failed run
        raise InputError(
            f"{url} refused the token ({problem.detail}): check --dataverse-url and that the "
            "app registration has an application user there") from None
    except IntegrationError as problem:
        if problem.system is System.DATAVERSE and problem.status is None:
            raise InputError(f"cannot reach {url}: {problem.detail}") from None
        raise
    return api


def _plan(desired: DesiredSchema, api: MetadataApi,
          progress: Callable[[str], None]) -> list[Item]:
    choices: dict[str, FoundChoice | None] = {}
    for name in desired.choices:
        progress(f"reading choice {name}")
        choices[name] = api.choice(name)
    tables: dict[str, FoundTable | None] = {}
    for table in desired.tables:
        progress(f"reading table {table.logical_name}")
        tables[table.logical_name] = api.table(table.logical_name)

    def in_use(table: str, column: str, value: int) -> bool:
        found = tables.get(table)
        entity_set = found.table.entity_set if found is not None else table
        return api.value_in_use(entity_set, column, value)

    return make_plan(desired, tables, choices, in_use)
