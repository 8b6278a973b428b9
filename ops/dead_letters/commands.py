"""The handlers of ``dead-letters list|show|replay|purge``: each takes the parsed arguments and
returns the exit code (``ops.errors``)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ops.context import Console, open_console
from ops.dead_letters.connect import dead_letter_console
from ops.dead_letters.decoding import describe
from ops.dead_letters.model import DeadLetter
from ops.dead_letters.replay import ReplayReport, replay
from ops.dead_letters.selection import check_selection, chosen_letters, confirmed, filtered
from ops.dead_letters.store import DeadLetterConsole
from ops.dead_letters.views import (
    HEADER_FIELDS,
    LIST_HEADERS,
    item_headers,
    list_record,
    list_row,
    show_record,
)
from ops.errors import EXIT_ATTENTION, EXIT_OK, EXIT_USAGE, UsageError
from ops.output import Output, Styled

_ROW_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[tuple[Console, DeadLetterConsole]]:
    console = open_console(args)
    letters = dead_letter_console(console)
    try:
        yield console, letters
    finally:
        letters.close()


def _queue_letters(letters: DeadLetterConsole, queue: str | None) -> list[DeadLetter]:
    if queue is not None and queue not in letters.queues:
        raise UsageError(f"unknown queue {queue!r}: the app's queues are "
                         f"{', '.join(letters.queues)}")
    found = letters.all_dead_letters(queue)
    return sorted(found, key=lambda letter: (letter.enqueued_at is None, letter.enqueued_at))


# --- list --------------------------------------------------------------------------------------
def list_letters(args: argparse.Namespace) -> int:
    with _opened(args) as (console, letters):
        found = _queue_letters(letters, args.queue)
        accounts = None if args.account is None else _account_ids(console, args.account, found)
        found = filtered(found, run=args.run, accounts=accounts)
        now = letters.clock()
        records = [list_record(letter, now) for letter in found]
        out = console.out
        if out.as_json:
            out.json(records)
            return EXIT_OK
        if not records:
            out.line("no dead letters")
            return EXIT_OK
        out.title(f"dead letters ({len(records)})")
        out.table(LIST_HEADERS, [list_row(record) for record in records])
        return EXIT_OK


def _account_ids(console: Console, text: str, letters: Sequence[DeadLetter]) -> set[str]:
    """The email account ids ``--account`` means: an id as the letters carry it, else the
    accounts of that name in CRM (deactivated ones too: their batches can still be here)."""
    wanted = text.strip().casefold()
    named = {ref.account.casefold() for ref in (describe(letter).ref for letter in letters)
             if ref is not None}
    if wanted in named or _ROW_ID.match(wanted):
        return {wanted}
    ids = {row.account.row_id.casefold() for row in console.crm.accounts()
           if row.account.name.strip().casefold() == wanted}
    if not ids:
        raise UsageError(f"unknown email account {text!r}: give its name or row id")
    return ids


# --- show --------------------------------------------------------------------------------------
def show_letter(args: argparse.Namespace) -> int:
    with _opened(args) as (console, letters):
        found = [letter for letter in _queue_letters(letters, None)
                 if letter.message_id == args.message_id]
        if not found:
            raise UsageError(f"no dead letter with id {args.message_id}; "
                             "`dead-letters list` shows those there are")
        now = letters.clock()
        records = [show_record(letter, now, reveal=args.reveal) for letter in found]
        out = console.out
        if out.as_json:
            out.json(records if len(records) > 1 else records[0])
            return EXIT_OK
        for letter, record in zip(found, records, strict=True):
            _print_detail(out, letter, record)
        return EXIT_OK


def _print_detail(out: Output, letter: DeadLetter, record: dict[str, object]) -> None:
    out.title(f"dead letter {letter.message_id}")
    width = max(len(label) for _, label in HEADER_FIELDS)
    for name, label in HEADER_FIELDS:
        value = record.get(name)
        if value is None or value == [] or (name == "replay_number" and value == 0):
            continue
        out.line(f"  {label.ljust(width)}  {_cell(value)}")
    properties = record["properties"]
    if isinstance(properties, dict) and properties:
        out.line(f"  {'properties'.ljust(width)}  "
                 + ", ".join(f"{k}={v}" for k, v in properties.items()))
    items = record.get("item_list")
    if isinstance(items, list):
        out.line()
        headers = item_headers(describe(letter))
        out.table(headers, [[_cell(item.get(h)) for h in headers] for item in items])
    body = record.get("body")
    if isinstance(body, str):
        out.line()
        out.line("body:")
        out.line(body)


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- replay and purge --------------------------------------------------------------------------
# What a change does once the operator said yes: (output, the dead letters' console, those
# chosen, every dead letter read to choose them) -> the exit code.
Change = Callable[[Output, DeadLetterConsole, list[DeadLetter], list[DeadLetter]], int]


def replay_letters(args: argparse.Namespace) -> int:
    return _change_chosen(args, "replay", "replay {} to their queues?", _replay)


def purge_letters(args: argparse.Namespace) -> int:
    return _change_chosen(args, "purge",
                          "delete {} for good? Their batches stay counted as failed", _purge)


def _change_chosen(args: argparse.Namespace, verb: str, question: str, change: Change) -> int:
    """Check the selection, read and choose the dead letters, ask (``question`` with ``{}``
    for how many), then ``change`` them; nothing changes before the answer."""
    check_selection(args)
    with _opened(args) as (console, letters):
        known = _queue_letters(letters, args.queue)
        chosen = chosen_letters(args, known)
        if not chosen:
            console.out.note(f"no dead letters to {verb}")
            return EXIT_OK
        refused = _ask(console, args, question.format(_counted(chosen)))
        if refused is not None:
            return refused
        return change(console.out, letters, chosen, known)


def _replay(
    out: Output, letters: DeadLetterConsole, chosen: list[DeadLetter], known: list[DeadLetter]
) -> int:
    report = replay(letters, chosen, known)
    _print_replay(out, report)
    return EXIT_OK if report.ok else EXIT_ATTENTION


def _purge(
    out: Output, letters: DeadLetterConsole, chosen: list[DeadLetter], known: list[DeadLetter]
) -> int:
    removed = {(r.entity, r.sequence_number) for r in letters.store.remove(chosen)}
    purged = [(letter, (letter.entity, letter.sequence_number) in removed) for letter in chosen]
    if out.as_json:
        out.json([{"message_id": letter.message_id, "queue": letter.queue,
                   "where": str(letter.where), "purged": done} for letter, done in purged])
    else:
        out.table(("message id", "queue", "where", "purged"),
                  [[letter.message_id, letter.queue, str(letter.where),
                    Styled("yes", "ok") if done else Styled("gone already", "warn")]
                   for letter, done in purged])
    return EXIT_OK if len(removed) == len(chosen) else EXIT_ATTENTION


def _counted(letters: Sequence[DeadLetter]) -> str:
    queues: dict[str, int] = {}
    for letter in letters:
        queues[letter.queue] = queues.get(letter.queue, 0) + 1
    per_queue = ", ".join(f"{queue}: {count}" for queue, count in queues.items())
    noun = "dead letter" if len(letters) == 1 else "dead letters"
    return f"{len(letters)} {noun} ({per_queue})"


def _ask(console: Console, args: argparse.Namespace, question: str) -> int | None:
    """None to go ahead; else the exit code to end with."""
    answer = confirmed(question, yes=args.yes, stdin=sys.stdin, stderr=sys.stderr)
    if answer is None:
        console.out.note(f"refused: {question} needs a confirmation; there is no terminal to "
                         "ask on, so pass --yes")
        return EXIT_USAGE
    if not answer:
        console.out.note("nothing changed")
        return EXIT_OK
    return None


def _print_replay(out: Output, report: ReplayReport) -> None:
    records = [{
        "message_id": o.letter.message_id, "queue": o.letter.queue, "sent_as": o.sent_as,
        "superseded_by": o.superseded_by, "run_accounting": o.accounting, "error": o.error,
        "removed": o.removed,
    } for o in report.outcomes]
    if out.as_json:
        out.json({"replayed": records, "removal_error": report.removal_error})
        return
    rows = []
    for r in records:
        if r["error"]:
            result = Styled(f"failed: {r['error']}", "bad")
        elif r["superseded_by"]:
            result = Styled(f"replayed before, failed again as {r['superseded_by']}: "
                            "not re-sent", "warn")
        else:
            result = Styled(f"sent as {r['sent_as']}", "ok")
        removed = Styled("yes", "ok") if r["removed"] else Styled("no: replay it again", "warn")
        rows.append([r["message_id"], r["queue"], result, r["run_accounting"] or None, removed])
    out.table(("message id", "queue", "result", "run accounting", "removed"), rows)
    if report.removal_error:
        out.note(f"the dead letters were sent but not removed ({report.removal_error}): run "
                 "the same replay again; the repeated sends are dropped as duplicates")
