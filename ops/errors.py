"""What a console command can end in, and the exit codes that say so."""

from __future__ import annotations

# 0: done, and (for ``status``) nothing needs attention.
EXIT_OK = 0
# 1: something needs attention (``status``), or a service failed while a command ran.
EXIT_ATTENTION = 1
# 2: bad input or unusable settings; nothing was changed. argparse uses 2 for usage errors too.
EXIT_USAGE = 2


class UsageError(Exception):
    """The request cannot be carried out as asked (an unknown account, sync type or run, a
    settings file that cannot be read, a schedule that cannot take a Sync Now); nothing was
    changed. The message says what to do instead."""
