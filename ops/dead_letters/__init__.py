"""``dead-letters list|show|replay|purge``: the batches the app gave up on, wherever they are
(the broker's dead-letter sub-queue, the app's ``<queue>-deadletter`` queue), read with the
app's codec, and sent back to their queue exactly once or deleted."""

from __future__ import annotations

import argparse

from ops.context import add_common_options
from ops.dead_letters.commands import list_letters, purge_letters, replay_letters, show_letter
from ops.dead_letters.selection import add_selection

EPILOG = """\
exit codes:
  0  done (list and show: whatever they found)
  1  a service failed, or a replay or purge did not complete for every dead letter chosen
     (the table says which: run the command again, a repeated send is dropped as a duplicate)
  2  bad input or settings, an id that is no dead letter, or no confirmation: nothing changed

examples:
  python -m ops dead-letters list --run 20260302T120000-1a2b3c4d
  python -m ops dead-letters show optin-batch-5d41402abc4b2a76b9719d911017c592ae0bd0c1
  python -m ops dead-letters replay --run 20260302T120000-1a2b3c4d --yes
  python -m ops dead-letters purge optin-batch-5d41402abc4b2a76b9719d911017c592ae0bd0c1
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dead-letters", help="list, show, replay or purge dead-lettered batches",
        description="Dead-lettered batches of every queue: those the broker dead-lettered "
                    "after their last delivery, and those the app parked at once in "
                    "<queue>-deadletter.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="dead_letters_command", required=True,
                                     metavar="{list,show,replay,purge}")

    listing = commands.add_parser("list", help="every dead letter, one line each")
    listing.add_argument("--queue", metavar="QUEUE", help="only this queue's")
    listing.add_argument("--run", metavar="RUN", help="only this run's")
    listing.add_argument("--account", metavar="ACCOUNT",
                         help="only this email account's (its name or row id)")
    listing.set_defaults(handler=list_letters)

    show = commands.add_parser("show", help="one dead letter: its fields and its items")
    show.add_argument("message_id", metavar="MESSAGE_ID")
    show.add_argument("--reveal", action="store_true",
                      help="show email addresses and engagement details unmasked")
    show.set_defaults(handler=show_letter)

    replaying = commands.add_parser(
        "replay", help="send dead letters back to their queue, each batch once",
        description="Each is sent as <first id>~replay-<n> with its batch, session and "
                    "properties, then removed; the run counts what the replay does.")
    add_selection(replaying, "replay")
    replaying.set_defaults(handler=replay_letters)

    purge = commands.add_parser("purge", help="delete dead letters for good")
    add_selection(purge, "purge")
    purge.set_defaults(handler=purge_letters)

    # Given before or after the subcommand: the leaves' copies have no default, which would
    # otherwise overwrite a value given to ``dead-letters`` itself.
    add_common_options(parser)
    for leaf in (listing, show, replaying, purge):
        leaf.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS,
                          help="app settings (see `python -m ops --help`)")
        leaf.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                          help="print JSON for scripts")
