from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devhost.host import DevHost, HostOptions
from devhost.host_config import HostConfig
from devhost.local_settings import LocalSettings
from tests.devhost.fixture_app import SETTINGS, Recorder, build_app


class ManualClock:
    """A clock tests move by hand; starts just before a five-minute boundary."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime(2026, 3, 2, 9, 59, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_host(
    tmp_path: Path, recorder: Recorder, clock: ManualClock
) -> Iterator[Callable[..., DevHost]]:
    hosts: list[DevHost] = []

    def make(
        *, config: HostConfig | None = None, values: dict[str, str] | None = None,
        started: bool = True, **options: Any,
    ) -> DevHost:
        settings = LocalSettings(
            values={**SETTINGS, "LOCAL_QUEUE_DIR": str(tmp_path / "queues"), **(values or {})},
            source="test settings",
        )
        options.setdefault("timers", False)  # tests tick the scheduler themselves
        options.setdefault("http_port", 0)
        host = DevHost(build_app(recorder), settings, host_config=config,
                       options=HostOptions(**options), clock=clock, app_dir=tmp_path)
        hosts.append(host)
        if started:
            host.start()
        return host

    yield make
    for host in hosts:
        if recorder.gate is not None:
            recorder.gate.set()
        host.stop(timeout_s=10)
