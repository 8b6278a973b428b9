from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
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


def host_factory(
    tmp_path: Path, clock: ManualClock, build: Callable[[], func.FunctionApp],
    settings: Mapping[str, str], release: Callable[[], None], **defaults: Any,
) -> Iterator[Callable[..., DevHost]]:
    """Yields a maker of dev hosts, each on a fresh app from ``build`` with ``settings`` and
    ``defaults`` as its options; at the end ``release`` lets blocked functions go and every
    host is stopped."""
    hosts: list[DevHost] = []

    def make(
        *, config: HostConfig | None = None, values: dict[str, str] | None = None,
        started: bool = True, **options: Any,
    ) -> DevHost:
        local = LocalSettings(
            values={**settings, "LOCAL_QUEUE_DIR": str(tmp_path / "queues"), **(values or {})},
            source="test settings",
        )
        host = DevHost(build(), local, host_config=config,
                       options=HostOptions(**{**defaults, **options}), clock=clock,
                       app_dir=tmp_path)
        hosts.append(host)
        if started:
            host.start()
        return host

    yield make
    release()
    for host in hosts:
        host.stop(timeout_s=10)


@pytest.fixture
def make_host(
    tmp_path: Path, recorder: Recorder, clock: ManualClock
) -> Iterator[Callable[..., DevHost]]:
    def release() -> None:
        if recorder.gate is not None:
            recorder.gate.set()

    # Tests tick the scheduler themselves.
    yield from host_factory(tmp_path, clock, lambda: build_app(recorder), SETTINGS, release,
                            timers=False, http_port=0)
