"""``python -m ops``: the operator console's commands, and what their exits mean.

Every command has ``--help`` with examples, ``--settings FILE`` and ``--json``. Exit codes: 0
done (and healthy), 1 something needs attention or a service failed, 2 bad input or settings
(nothing was changed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ops import dead_letters, dry_run, retention, runs, status, sync_now
from ops.arguments import Handler, add_common_options
from ops.errors import EXIT_ATTENTION, EXIT_USAGE, UsageError
from shared.errors import AppError, ConfigError

EPILOG = """\
exit codes: 0 done (status: healthy), 1 needs attention or a service failed, 2 bad input or
settings (nothing changed).

settings: --settings FILE, else the app settings in the environment, else the running local
stack (make run writes .run/local-stack.json).

examples:
  python -m ops status
  python -m ops runs --account "Brand 1" --limit 5
  python -m ops runs show 20250301T101500-1a2b3c4d
  python -m ops dry-run "Brand 1" ContactOptIn
  python -m ops sync-now "Brand 1" SuppressionLists
  python -m ops retention --apply
  python -m ops <command> --help
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops", description="The connector's operator console.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what the app's services do (stderr)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (status, runs, dry_run, sync_now, retention, dead_letters):
        module.register(subparsers)
    # Every command and subcommand takes the same connection and output options.
    for command in subparsers.choices.values():
        add_common_options(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's own usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.verbose:
        logging.getLogger().setLevel(logging.INFO)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AppError as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_ATTENTION
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
