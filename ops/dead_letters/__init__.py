"""``dead-letters list|show|replay|purge``: the batches the app gave up on, wherever they are
(the broker's dead-letter sub-queue, the app's ``<queue>-deadletter`` queue), read with the
app's codec, and sent back to their queue exactly once or deleted."""

from __future__ import annotations

from ops.arguments import Subparsers, add_command
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


def register(subparsers: Subparsers) -> None:
    parser = add_command(
        subparsers, "dead-letters", help="list, show, replay or purge dead-lettered batches",
        description="Dead-lettered batches of every queue: those the broker dead-lettered "
                    "after their last delivery, and those the app parked at once in "
                    "<queue>-deadletter.",
        epilog=EPILOG)
    commands = parser.add_subparsers(dest="dead_letters_command", required=True,
                                     metavar="{list,show,replay,purge}")

    listing = add_command(commands, "list", help="every dead letter, one line each",
                          handler=list_letters)
    listing.add_argument("--queue", metavar="QUEUE", help="only this queue's")
    listing.add_argument("--run", metavar="RUN", help="only this run's")
    listing.add_argument("--account", metavar="ACCOUNT",
                         help="only this email account's (its name or row id)")

    show = add_command(commands, "show", help="one dead letter: its fields and its items",
                       handler=show_letter)
    show.add_argument("message_id", metavar="MESSAGE_ID")
    show.add_argument("--reveal", action="store_true",
                      help="show email addresses and engagement details unmasked")

    add_selection(add_command(
        commands, "replay", help="send dead letters back to their queue, each batch once",
        description="Each is sent as <first id>~replay-<n> with its batch, session and "
                    "properties, then removed; the run counts what the replay does.",
        handler=replay_letters), "replay")
    add_selection(add_command(commands, "purge", help="delete dead letters for good",
                              handler=purge_letters), "purge")
