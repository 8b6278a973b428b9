"""The three sync types as the console names them, and where each keeps its state and queue."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from shared.config import QueueSettings
from shared.domain.model import SyncType
from shared.services.engagement.reader import engagement_sync_key
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import SyncKey
from shared.services.suppression.reader import suppression_sync_key


@dataclass(frozen=True)
class SyncKind:
    sync_type: SyncType
    state_key: Callable[..., SyncKey]  # (email account id, *, dry_run) -> its partition
    queue: Callable[[QueueSettings], str]
    aliases: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.sync_type.label

    def key(self, account_id: str, *, dry_run: bool = False) -> SyncKey:
        key: SyncKey = self.state_key(account_id, dry_run=dry_run)
        return key


KINDS = {
    SyncType.CONTACT_OPT_IN: SyncKind(SyncType.CONTACT_OPT_IN, optin_sync_key,
                                      lambda queues: queues.optin_queue, ("optin", "opt-in")),
    SyncType.SUPPRESSION_LISTS: SyncKind(SyncType.SUPPRESSION_LISTS, suppression_sync_key,
                                         lambda queues: queues.suppression_queue,
                                         ("suppression", "suppressions")),
    SyncType.ENGAGEMENT: SyncKind(SyncType.ENGAGEMENT, engagement_sync_key,
                                  lambda queues: queues.engagement_queue, ()),
}


def sync_type_arg(text: str) -> SyncType:
    """argparse ``type=``: ContactOptIn, SuppressionLists or Engagement, in any case."""
    wanted = text.strip().casefold()
    for kind in KINDS.values():
        if wanted in (kind.label.casefold(), *kind.aliases):
            return kind.sync_type
    names = ", ".join(kind.label for kind in KINDS.values())
    raise argparse.ArgumentTypeError(f"unknown sync type {text!r}: expected one of {names}")


def add_account_and_sync_type(parser: argparse.ArgumentParser) -> None:
    """The ACCOUNT SYNC_TYPE pair of the commands that act on one schedule."""
    parser.add_argument("account", metavar="ACCOUNT", help="email account name or id")
    parser.add_argument("sync_type", metavar="SYNC_TYPE", type=sync_type_arg,
                        help="ContactOptIn, SuppressionLists or Engagement")


def kind_of_partition(sync_type_part: str) -> tuple[SyncKind, bool] | None:
    """The sync kind and dry-run flag of a state partition's sync type part (``ContactOptIn``,
    ``ContactOptIn.dry``); None for state that is not a sync's (the programs mirror's)."""
    for kind in KINDS.values():
        for dry_run in (False, True):
            if kind.key("x", dry_run=dry_run).sync_type == sync_type_part:
                return kind, dry_run
    return None
