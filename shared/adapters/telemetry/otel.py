"""The services' ``Telemetry`` as OpenTelemetry metrics and spans.

Every attribute is a dimension of ``shared.services.telemetry.Dimensions`` (ids and fixed names)
or a fixed word (``system``, ``reason``: an error class): nothing a person could be known by.

The SDK keeps one aggregation per attribute set for the life of the process, and ``run_id``
makes a new set per run: about 12 KB a run (measured), a few MB a day for a worker that lives
that long with many accounts on short intervals.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from shared.services.telemetry import Dimensions

INSTRUMENTATION = "ec_dynamics_connector"


class OpenTelemetryTelemetry:
    """Counters and a histogram on a meter, spans on a tracer (the global providers unless
    given: ``configure_azure_monitor`` sets those)."""

    def __init__(
        self, *, meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        meter = metrics.get_meter(INSTRUMENTATION, meter_provider=meter_provider)
        self._read = meter.create_counter(
            "connector.records.read", unit="{record}", description="items of applied batches")
        self._changed = meter.create_counter(
            "connector.records.changed", unit="{record}",
            description="records, rows, flags and notes written (would be, in a dry run)")
        self._failed = meter.create_counter(
            "connector.records.failed", unit="{record}", description="items given up on")
        self._requests = meter.create_counter(
            "connector.requests", unit="{request}",
            description="requests sent to dotdigital and Dataverse, retries included")
        self._throttled = meter.create_counter(
            "connector.requests.throttled", unit="{response}",
            description="requests refused with 429 (or dotdigital's usage limit)")
        self._dead_letters = meter.create_counter(
            "connector.dead_letters", unit="{message}",
            description="messages moved to the dead letters, by the app or the broker")
        self._duration = meter.create_histogram(
            "connector.run.duration", unit="s", description="from a run's start to its last "
            "batch counted")
        self._tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)

    def span(self, name: str, dimensions: Dimensions) -> AbstractContextManager[object]:
        return self._span(name, dimensions)

    def records(self, dimensions: Dimensions, *, read: int, changed: int, failed: int) -> None:
        attributes = dimensions.attributes()
        self._read.add(read, attributes)
        self._changed.add(changed, attributes)
        self._failed.add(failed, attributes)

    def run_completed(self, dimensions: Dimensions, *, duration_s: float) -> None:
        self._duration.record(duration_s, dimensions.attributes())

    def dead_lettered(self, dimensions: Dimensions, *, reason: str) -> None:
        self._dead_letters.add(1, {**dimensions.attributes(), "reason": reason})

    def requests(self, dimensions: Dimensions, *, system: str, sent: int, throttled: int) -> None:
        attributes = {**dimensions.attributes(), "system": system}
        if sent:
            self._requests.add(sent, attributes)
        if throttled:
            self._throttled.add(throttled, attributes)

    @contextmanager
    def _span(self, name: str, dimensions: Dimensions) -> Iterator[trace.Span]:
        # The exception's message stays out of the span: it may quote a service's answer.
        with self._tracer.start_as_current_span(
            name, attributes=dimensions.attributes(), record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
