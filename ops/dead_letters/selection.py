"""Which dead letters a command acts on, and the operator's go-ahead for changing them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TextIO

from ops.dead_letters.decoding import describe
from ops.dead_letters.model import DeadLetter
from ops.errors import UsageError


def filtered(
    letters: Sequence[DeadLetter], *, run: str | None = None, accounts: set[str] | None = None,
) -> list[DeadLetter]:
    """``letters`` of run ``run`` and of one of ``accounts`` (email account ids), when given."""
    chosen = []
    for letter in letters:
        ref = describe(letter).ref
        if run is not None and (ref is None or ref.run_id != run):
            continue
        if accounts is not None and (ref is None or ref.account.casefold() not in accounts):
            continue
        chosen.append(letter)
    return chosen


def chosen_letters(args: argparse.Namespace, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
    """What ``MESSAGE_ID... | --run RUN | --all`` names; an id that matches no dead letter is
    refused (``UsageError``) before anything changes."""
    if args.all:
        return list(letters)
    if args.run is not None:
        return filtered(letters, run=args.run)
    by_id = {letter.message_id for letter in letters}
    missing = [message_id for message_id in args.message_ids if message_id not in by_id]
    if missing:
        raise UsageError(f"no dead letter with id {', '.join(missing)} (replayed or purged "
                         "already?); `dead-letters list` shows those there are")
    wanted = set(args.message_ids)
    return [letter for letter in letters if letter.message_id in wanted]


def add_selection(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID",
                        help=f"the dead letters to {verb} (ids as `dead-letters list` shows)")
    parser.add_argument("--run", metavar="RUN", help=f"{verb} every dead letter of this run")
    parser.add_argument("--all", action="store_true", help=f"{verb} every dead letter")
    parser.add_argument("--queue", metavar="QUEUE", help="only the dead letters of this queue")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def check_selection(args: argparse.Namespace) -> None:
    given = sum((bool(args.message_ids), args.run is not None, bool(args.all)))
    if given != 1:
        raise UsageError("name the dead letters: MESSAGE_ID..., --run RUN or --all (one of them)")


def confirmed(question: str, *, yes: bool, stdin: TextIO, stderr: TextIO) -> bool | None:
    """True to go ahead, False when the operator said no, None when nobody can be asked (no
    terminal, and no ``--yes``): the caller refuses rather than guess."""
    if yes:
        return True
    if not stdin.isatty():
        return None
    # The question goes to stderr: stdout carries results, JSON with --json.
    stderr.write(f"{question} [y/N] ")
    stderr.flush()
    answer = stdin.readline()
    return answer.strip().casefold() in ("y", "yes")
