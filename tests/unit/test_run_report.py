"""The ``make run ONCE=1`` report on a stand-in stack: connectivity from the last sync cycle, and
dead letters of both kinds (the broker's and those the app parked) counted and listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devhost.local_queue import MAX_DELIVERY_COUNT_EXCEEDED, StoredMessage
from devtools.run_report import build_report, format_report

QUEUE = "optin-batches"
REACHABLE = {"ok": True, "accounts": [
    {"email_account_id": "acc-1", "email_account": "Brand 1", "error": None}]}


class Journal:
    def __init__(self, cycles: list[dict[str, object]]) -> None:
        self.cycles = cycles

    def runs(self, kind: str) -> list[dict[str, object]]:
        return list(self.cycles) if kind == "sync-cycle" else []


class NoRuns:
    def get_run(self, key: object, run_id: str) -> None:
        return None


class Stats:
    def snapshot(self) -> dict[str, int]:
        return {"requests": 1, "throttled": 0, "faults_injected": 0}


@dataclass
class Server:
    stats: Stats = field(default_factory=Stats)


@dataclass
class Cluster:
    servers: Mapping[str, Server] = field(
        default_factory=lambda: {name: Server() for name in ("dotdigital", "dataverse", "entra")})


@dataclass
class StandInStack:
    """What ``build_report`` reads of a ``LocalStack``."""

    cycles: list[dict[str, object]]
    letters: list[StoredMessage] = field(default_factory=list)
    optin_queue: str = QUEUE
    values: dict[str, str] = field(default_factory=dict)
    state: NoRuns = field(default_factory=NoRuns)
    cluster: Cluster = field(default_factory=Cluster)

    def __post_init__(self) -> None:
        self.journal = Journal(self.cycles)

    def email_accounts(self) -> list[dict[str, Any]]:
        return [{"ec_emailaccountid": "acc-1", "ec_name": "Brand 1"}]

    def counters(self) -> dict[str, Any]:
        return {"dead_lettered": sum(1 for m in self.letters if m.queue == QUEUE)}

    def dead_letters(self) -> list[StoredMessage]:
        return list(self.letters)

    def seconds(self) -> float:
        return 1.0


def letter(queue: str, reason: str, description: str) -> StoredMessage:
    return StoredMessage(queue=queue, sequence_number=1, message_id=f"m-{reason}", body=b"{}",
                         content_type="application/json", application_properties={},
                         enqueued_at=0.0, delivery_count=1, dead_letter_reason=reason,
                         dead_letter_description=description, session_id="optin-2")


def test_connectivity_is_the_last_sync_cycles_when_several_ran() -> None:
    failing = {"ok": False, "accounts": [
        {"email_account_id": "acc-1", "email_account": "Brand 1", "error": "dotdigital 401"}]}
    first = build_report(StandInStack([{"connectivity": failing}, {"connectivity": REACHABLE}]))
    assert first["connectivity"] == REACHABLE and first["ok"] is True
    last = build_report(StandInStack([{"connectivity": REACHABLE}, {"connectivity": failing}]))
    assert last["connectivity"] == failing and last["ok"] is False
    assert "connectivity: Brand 1: dotdigital 401" in format_report(last)
    assert build_report(StandInStack([]))["ok"] is False  # no cycle ran: nothing was checked


def test_a_quiet_install_is_reported_with_its_note_when_no_account_is_active() -> None:
    quiet = {"ok": True, "accounts": [], "note": "no active email account is configured in CRM"}
    report = build_report(StandInStack([{"connectivity": quiet}]))
    assert report["connectivity"] == quiet
    assert "connectivity: no active email account is configured in CRM" in format_report(report)


def test_parked_messages_count_as_dead_lettered_and_are_listed_with_their_reason() -> None:
    stack = StandInStack([{"connectivity": REACHABLE}], [
        letter(QUEUE, MAX_DELIVERY_COUNT_EXCEEDED, "TransientError: dataverse HTTP 503"),
        letter(f"{QUEUE}-deadletter", "BadRequest", "dataverse HTTP 400: bad column"),
    ])
    report = build_report(stack)
    assert report["ok"] is False and report["dead_lettered"] == 2
    assert [(d["queue"], d["reason"]) for d in report["dead_letters"]] == [
        (f"{QUEUE}/$deadletterqueue", MAX_DELIVERY_COUNT_EXCEEDED),
        (f"{QUEUE}-deadletter", "BadRequest")]
    text = format_report(report)
    assert ("dead letter m-BadRequest (optin-2) in optin-batches-deadletter: BadRequest: "
            "dataverse HTTP 400: bad column") in text
    assert "result: FAILED" in text


def test_a_parked_message_alone_fails_the_run_when_the_broker_dead_lettered_nothing() -> None:
    stack = StandInStack([{"connectivity": REACHABLE}],
                         [letter(f"{QUEUE}-deadletter", "MessageFormatError", "not JSON")])
    report = build_report(stack)
    assert report["functions"]["dead_lettered"] == 0
    assert report["ok"] is False and report["dead_lettered"] == 1
