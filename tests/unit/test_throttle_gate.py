"""A 429 to one request holds the process's other new requests to that service as well."""

from __future__ import annotations

from typing import Any

import requests

from shared.adapters.http.policy import RetryPolicy, ServiceCaller
from shared.adapters.http.throttle_gate import ThrottleGate
from shared.config import HttpSettings
from shared.errors import System


class ScriptedSession(requests.Session):
    """Answers with the given statuses in turn and records what happened when."""

    def __init__(self, statuses: list[int], log: list[str]) -> None:
        super().__init__()
        self.statuses = statuses
        self.log = log

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response.headers["Retry-After"] = "2"
        response._content = b"{}"
        self.log.append(f"{method} {response.status_code}")
        return response


def _caller(statuses: list[int]) -> tuple[ServiceCaller, list[str]]:
    log: list[str] = []

    def sleep(seconds: float) -> None:  # the clock stands still: only the order matters
        log.append(f"sleep {seconds:g}")

    policy = RetryPolicy(sleep=sleep, random=lambda: 1.0)
    gate = ThrottleGate(clock=lambda: 100.0, sleep=sleep)
    caller = ServiceCaller(System.DATAVERSE, HttpSettings(), session=ScriptedSession(statuses, log),
                           policy=policy, gate=gate)
    return caller, log


def test_after_a_429_the_next_request_waits_out_the_same_retry_after() -> None:
    caller, log = _caller([429, 200, 200])
    caller.send("GET", "https://crm.example/api/data/v9.2/contacts", "read")
    caller.send("GET", "https://crm.example/api/data/v9.2/leads", "read")
    # The throttled request adds the policy's jitter; the next one waits what the server asked.
    assert log == ["GET 429", "sleep 2.2", "GET 200", "sleep 2", "GET 200"]


def test_other_failures_do_not_hold_anyone_else() -> None:
    caller, log = _caller([503, 200, 200])
    caller.send("GET", "https://crm.example/api/data/v9.2/contacts", "read")
    caller.send("GET", "https://crm.example/api/data/v9.2/leads", "read")
    assert log == ["GET 503", "sleep 0.5", "GET 200", "GET 200"]


def test_an_open_gate_does_not_wait() -> None:
    waits: list[float] = []
    gate = ThrottleGate(clock=lambda: 10.0, sleep=waits.append)
    gate.wait()
    gate.close_for(3.0)
    gate.close_for(1.0)  # a shorter wait never shortens the one in force
    gate.wait()
    assert waits == [3.0]
