"""A 429 to one request holds the process's other new requests to that service; after the hold
they ramp up one at a time until the service admits one again."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from shared.adapters.http.policy import RetryPolicy, ServiceCaller
from shared.adapters.http.throttle_gate import ThrottleGate
from shared.config import HttpSettings
from shared.errors import System


class FakeTime:
    """A clock that moves only when something sleeps or pauses, and a log of what happened."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.log: list[str] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.log.append(f"sleep {seconds:g}")
        self.now += seconds

    def pause(self, _: threading.Event, seconds: float) -> None:
        self.log.append(f"held {seconds:g}")
        self.now += seconds


class ScriptedSession(requests.Session):
    """Answers with the given statuses in turn (429s ask for 2 s) and logs each request."""

    def __init__(self, statuses: list[int], time_: FakeTime) -> None:
        super().__init__()
        self.statuses = statuses
        self.time = time_

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response.headers["Retry-After"] = "2"
        response._content = b"{}"
        self.time.log.append(f"{method} {response.status_code} at {self.time.now:g}")
        return response


def _caller(statuses: list[int]) -> tuple[ServiceCaller, FakeTime]:
    time_ = FakeTime()
    policy = RetryPolicy(sleep=time_.sleep, random=lambda: 1.0)
    gate = ThrottleGate(clock=time_.clock, pause=time_.pause)
    session = ScriptedSession(statuses, time_)
    caller = ServiceCaller(System.DATAVERSE, HttpSettings(), session=session, policy=policy,
                           gate=gate)
    return caller, time_


def _gate(now: float = 10.0) -> tuple[ThrottleGate, FakeTime]:
    time_ = FakeTime(now)
    return ThrottleGate(clock=time_.clock, pause=time_.pause, ramp_step_s=0.1), time_


def test_a_throttled_request_that_is_admitted_on_its_retry_opens_the_gate() -> None:
    caller, time_ = _caller([429, 200, 200])
    caller.send("GET", "https://crm.example/api/data/v9.2/contacts", "read")
    caller.send("GET", "https://crm.example/api/data/v9.2/leads", "read")
    # The throttled request waits Retry-After plus the policy's jitter; once it is admitted
    # the budget is back, so the next request goes at once.
    assert time_.log == ["GET 429 at 100", "sleep 2.2", "GET 200 at 102.2", "GET 200 at 102.2"]


def test_other_failures_do_not_hold_anyone_else() -> None:
    caller, time_ = _caller([503, 200, 200])
    caller.send("GET", "https://crm.example/api/data/v9.2/contacts", "read")
    caller.send("GET", "https://crm.example/api/data/v9.2/leads", "read")
    assert time_.log == ["GET 503 at 100", "sleep 0.5", "GET 200 at 100.5", "GET 200 at 100.5"]


def test_an_open_gate_does_not_wait() -> None:
    gate, time_ = _gate()
    assert gate.wait() == 10.0
    assert time_.log == []


def test_requests_wait_out_the_hold_then_go_one_step_apart() -> None:
    gate, time_ = _gate()
    gate.close_for(3.0)
    assert [round(gate.wait(), 6) for _ in range(3)] == [13.0, 13.1, 13.2]


def test_a_longer_wait_asked_during_the_hold_extends_it_and_a_shorter_one_does_not() -> None:
    gate, time_ = _gate()
    gate.close_for(3.0)
    time_.now = 11.0
    gate.close_for(1.0)
    assert gate.wait() == 13.0
    gate, time_ = _gate()
    gate.close_for(3.0)
    time_.now = 11.0
    gate.close_for(5.0)
    assert gate.wait() == 16.0


def test_a_refusal_during_the_ramp_holds_only_the_refused_request() -> None:
    gate, time_ = _gate()
    gate.close_for(1.0)
    assert gate.wait() == 11.0
    gate.close_for(2.0)  # the first request out is refused again: it waits its own 2 s
    assert round(gate.wait(), 6) == 11.1


def test_only_a_request_sent_after_the_latest_429_opens_the_gate() -> None:
    gate, time_ = _gate()
    gate.close_for(3.0)
    gate.passed(9.5)  # in flight before the 429: says nothing about the budget now
    assert gate.wait() == 13.0
    gate.passed(13.0)
    assert [gate.wait() for _ in range(3)] == [13.0, 13.0, 13.0]


def test_a_new_429_after_the_gate_opened_starts_a_new_hold() -> None:
    gate, time_ = _gate()
    gate.close_for(1.0)
    gate.passed(gate.wait())
    gate.close_for(2.0)
    assert gate.wait() == 13.0


def test_a_held_request_woken_by_the_gate_opening_waits_out_a_429_that_closed_it_again() -> None:
    gate, time_ = _gate()
    gate.close_for(5.0)
    woken = False

    def pause(opened: threading.Event, seconds: float) -> None:
        nonlocal woken
        if woken:
            time_.pause(opened, seconds)
            return
        # What a real pause sees: the gate opens at 11 and ends the pause early, then a new
        # 429 closes it for 2 s before the held thread takes the lock again.
        woken = True
        time_.now = 11.0
        gate.passed(11.0)
        gate.close_for(2.0)

    gate._pause = pause
    assert gate.wait() == 13.0 and time_.now == 13.0


def test_held_threads_go_as_soon_as_the_gate_opens() -> None:
    gate = ThrottleGate()
    gate.close_for(60.0)
    went: list[float] = []
    threads = [threading.Thread(target=lambda: went.append(gate.wait()), daemon=True)
               for _ in range(3)]
    for thread in threads:
        thread.start()
    gate.passed(time.monotonic())
    for thread in threads:
        thread.join(timeout=20)
    assert len(went) == 3  # long before the 60 s hold would have ended
