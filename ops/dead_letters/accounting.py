"""Run accounting for a replayed batch, in the console's words: the state store takes back the
"failed" the run counted when the batch was given up (``shared/adapters/storage/
batch_reopening.py`` says how and why), so the run counts what the replay does instead."""

from __future__ import annotations

from azure.data.tables import TableClient

from ops.dead_letters.decoding import describe
from ops.dead_letters.model import DeadLetter
from ops.dead_letters.store import Reopened
from ops.syncs import KINDS
from shared.adapters.storage.batch_reopening import BatchCount, BatchReopening

_NOTES = {
    BatchCount.NOT_COUNTED: "not counted yet: the run counts the replay",
    BatchCount.APPLIED: "counted as applied already: the replay changes no count",
    BatchCount.TAKEN_BACK: "failed count taken back: the run counts the replay",
}


class RunAccounting:
    """``BatchAccounting`` on the sync state table (``syncstate``)."""

    def __init__(self, table: TableClient) -> None:
        self._reopening = BatchReopening(table)

    def reopen(self, letter: DeadLetter) -> Reopened:
        view = describe(letter)
        if view.ref is None or view.sync_type is None:
            return Reopened("names no batch: no run counts it")
        ref = view.ref
        key = KINDS[view.sync_type].key(ref.account, dry_run=ref.dry_run)
        reopening = self._reopening.reopen(key, ref.run_id, ref.batch)
        if reopening.count is BatchCount.RUN_GONE:
            return Reopened(f"run {ref.run_id} is no longer in the state store (purged?): "
                            "applied, but counted in no run")
        undo = reopening.undo
        if undo is None:
            return Reopened(_NOTES[reopening.count])

        def put_back() -> str:
            if undo():
                return "not sent: the run counts the batch as failed again"
            return "the run is left open (it changed meanwhile): replay again to close it"

        return Reopened(_NOTES[reopening.count], undo=put_back)
