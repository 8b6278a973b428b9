"""What the console's command parsers share: how a command is added, with its examples kept as
written, and the options every command takes (``--settings``, ``--json``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

Handler = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(
    subparsers: Subparsers, name: str, *, help: str, description: str | None = None,
    epilog: str | None = None, handler: Handler | None = None,
) -> argparse.ArgumentParser:
    """A command (or subcommand) whose description and epilog keep their line breaks, so the
    examples read as typed; ``handler`` is what ``ops.cli.main`` calls with the arguments."""
    parser = subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def add_common_options(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """``--settings`` and ``--json`` on ``parser`` and on every subcommand under it, so they
    can be given before or after the subcommand (``runs --json show RUN``)."""
    # A subcommand's defaults overwrite what its parent parsed: its copies have none.
    parser.add_argument("--settings", metavar="FILE",
                        default=argparse.SUPPRESS if nested else None,
                        help="app settings: local.settings.json's form, or `az functionapp "
                             "config appsettings list` output (default: the environment, else "
                             "the running local stack)")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if nested else False,
                        help="print JSON for scripts")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subcommand in action.choices.values():
                add_common_options(subcommand, nested=True)
