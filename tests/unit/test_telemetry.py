"""Telemetry: what a sync run sends (metrics, spans, logs) and with which dimensions, that nothing
personal is among them, and that without a connection string nothing of OpenTelemetry loads.

OpenTelemetry's in-memory reader and exporters stand in for Application Insights.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import bootstrap
from shared.adapters.http.policy import RetryPolicy, send
from shared.adapters.servicebus.message_codec import JsonMessageCodec, encode
from shared.adapters.telemetry import MeteredCallStats, azure_monitor, configuration
from shared.adapters.telemetry.logs import DimensionsFilter
from shared.adapters.telemetry.otel import OpenTelemetryTelemetry
from shared.domain.commands import ApplyOptInBatch, BatchRef, OptInChange
from shared.domain.model import SyncSchedule, SyncStatus, SyncType
from shared.entrypoints import sync_queues, sync_timers
from shared.errors import System, TransientError
from shared.services import telemetry
from shared.services.optin.applier import Applier, apply_optin_delivery
from shared.services.optin.reader import optin_sync_key
from shared.services.ports import ReceivedMessage
from shared.services.sync.schedules import ScheduleKeeper
from tests.fakes.crm import FakeCrmSettings, an_account
from tests.fakes.crm_records import FakeCrmRecords
from tests.fakes.email_platform import FakeEmailPlatform
from tests.fakes.publisher import FakeBatchPublisher
from tests.fakes.state import InMemorySyncStateStore
from tests.functions.test_sync_timer import ENVIRON, fake_services

ROOT = Path(__file__).resolve().parents[2]
QUEUE = ENVIRON["OPTIN_QUEUE_NAME"]
RUN_DIMENSIONS = {"run_id", "email_account_id", "sync_type", "dry_run"}
# Building the services connects nowhere; the publisher only needs a well-formed string.
SERVICE_BUS = ("Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=app;"
               "SharedAccessKey=a2V5")


@dataclass
class Captured:
    metrics: InMemoryMetricReader
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter

    def every_metric(self) -> Iterator[Any]:
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                yield from scope.metrics

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every point of the metric ``name``."""
        return [(dict(point.attributes or {}), point) for metric in self.every_metric()
                if metric.name == name for point in metric.data.data_points]

    def total(self, name: str, **dimensions: str) -> int:
        return sum(point.value for attributes, point in self.points(name)
                   if dimensions.items() <= attributes.items())

    def every_attribute_value(self) -> list[object]:
        values: list[object] = []
        for metric in self.every_metric():
            for point in metric.data.data_points:
                values += list((point.attributes or {}).values())
        for span in self.spans.get_finished_spans():
            values += list((span.attributes or {}).values())
        for log in self.logs.get_finished_logs():
            values += list((log.log_record.attributes or {}).values())
        return values


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The services' telemetry into memory, and the app's log lines through the same handler
    and filter as in Azure."""
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = LoggingHandler(logger_provider=logger_provider)
    handler.addFilter(DimensionsFilter())
    app_logger = logging.getLogger(azure_monitor.LOGGER_NAME)
    level = app_logger.level
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    telemetry.install(OpenTelemetryTelemetry(meter_provider=MeterProvider([reader]),
                                             tracer_provider=tracer_provider))
    try:
        yield Captured(reader, spans, logs)
    finally:
        telemetry.install(None)
        app_logger.removeHandler(handler)
        app_logger.setLevel(level)


def delivered(message: Any, delivery_count: int = 1) -> ServiceBusMessage:
    """A published message as the queue trigger receives it."""
    return ServiceBusMessage(
        body=message.body, message_id=message.message_id, session_id=message.session_id,
        delivery_count=delivery_count, application_properties=dict(message.application_properties),
        user_properties=dict(message.application_properties), content_type="application/json",
    )


def entrypoint(function: Any) -> Callable[..., None]:
    built: Any = function.build().get_user_function()
    return built  # type: ignore[no-any-return]


class TestASyncRun:
    """A tick of the timer, then every batch through the queue trigger, as in Azure."""

    @pytest.fixture
    def run(self, captured: Captured) -> Captured:
        crm = FakeCrmSettings([an_account("acc-1")], [SyncSchedule(
            row_id="optin-1", email_account_id="acc-1", sync_type=SyncType.CONTACT_OPT_IN,
            sync_now=True)])
        platform = FakeEmailPlatform()
        for n in range(30):
            platform.add("acc-1", f"Person.{n}@Example.com", "Double",
                         dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        services = fake_services(crm, platform)
        records: Any = services.crm_records
        for n in range(10):  # a third of them are contacts in CRM, raised to Double
            records.add("contact", f"person.{n}@example.com")
        with bootstrap.override(services):
            entrypoint(sync_timers.sync_timer)(TimerRequest(past_due=False))
            published: Any = services.publisher
            messages = published.messages(QUEUE)
            assert messages
            for message in messages:
                entrypoint(sync_queues.apply_optin)(delivered(message))
        assert crm.schedule_of("acc-1", SyncType.CONTACT_OPT_IN).status is SyncStatus.NONE
        return captured

    def test_records_read_and_changed_are_counted_by_run_account_and_sync_type(
        self, run: Captured
    ) -> None:
        [(attributes, _)] = run.points("connector.records.read")
        assert attributes.keys() == RUN_DIMENSIONS | {"queue"}
        assert attributes["email_account_id"] == "acc-1"
        assert attributes["sync_type"] == "ContactOptIn" and attributes["queue"] == QUEUE
        assert attributes["dry_run"] == "false"
        assert run.total("connector.records.read", sync_type="ContactOptIn") == 30
        assert run.total("connector.records.changed", run_id=attributes["run_id"]) == 10
        assert run.total("connector.records.failed") == 0
        assert run.points("connector.dead_letters") == []

    def test_the_run_duration_is_measured_once_when_its_last_batch_is_counted(
        self, run: Captured
    ) -> None:
        [(attributes, point)] = run.points("connector.run.duration")
        assert attributes.keys() == RUN_DIMENSIONS
        assert (attributes["email_account_id"], attributes["sync_type"]) == ("acc-1",
                                                                              "ContactOptIn")
        assert point.count == 1 and point.sum >= 0

    def test_the_tick_the_run_step_and_each_delivery_are_spans_with_the_dimensions(
        self, run: Captured
    ) -> None:
        spans = {span.name: span for span in run.spans.get_finished_spans()}
        assert {"sync.cycle", "sync.read", "sync.apply"} <= spans.keys()
        cycle, read = spans["sync.cycle"], spans["sync.read"]
        assert read.parent is not None and cycle.context is not None
        assert read.parent.span_id == cycle.context.span_id
        assert dict(read.attributes or {}) == {
            "run_id": (cycle.attributes or {})["run_id"], "email_account_id": "acc-1",
            "sync_type": "ContactOptIn", "dry_run": "false"}
        assert (spans["sync.apply"].attributes or {})["queue"] == QUEUE

    def test_log_lines_of_the_run_carry_its_dimensions(self, run: Captured) -> None:
        lines = [(str(log.log_record.body), dict(log.log_record.attributes or {}))
                 for log in run.logs.get_finished_logs()]
        # Every line of the tick and the deliveries: the cycle's schedule rows included.
        assert lines and all("run_id" in attributes for _, attributes in lines)
        of_the_run = [attributes for body, attributes in lines
                      if body.startswith(("account=acc-1 opt-in run", "opt-in message", "run "))]
        assert len(of_the_run) >= 3
        assert all(attributes["email_account_id"] == "acc-1"
                   and attributes["sync_type"] == "ContactOptIn" for attributes in of_the_run)

    def test_no_address_is_in_any_dimension_of_any_metric_span_or_log_line(
        self, run: Captured
    ) -> None:
        values = run.every_attribute_value()
        assert values
        assert not [value for value in values if "@" in str(value)]
        assert not [log.log_record.body for log in run.logs.get_finished_logs()
                    if "@" in str(log.log_record.body)]


class TestDeadLetters:
    NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    RUN = "20240501T120000-abcd1234"

    def applier(self, state: InMemorySyncStateStore) -> Applier:
        crm = FakeCrmSettings([], [SyncSchedule("sched-1", "acc-1", SyncType.CONTACT_OPT_IN,
                                                status=SyncStatus.IN_PROGRESS)])
        key = optin_sync_key("acc-1", dry_run=False)
        state.start_run(key, self.RUN, since=self.NOW - dt.timedelta(hours=1), until=self.NOW)
        state.record_published(key, self.RUN, batches=1, done=True)
        records = FakeCrmRecords(fail_next=1)  # its message quotes nothing personal here
        return Applier(crm_records=records, schedules=ScheduleKeeper(crm), state=state,
                       publisher=FakeBatchPublisher(), codec=JsonMessageCodec(), queue="optin-q",
                       max_delivery_count=3, clock=lambda: self.NOW)

    def received(self, body: bytes | None = None, delivery_count: int = 1) -> ReceivedMessage:
        message = encode(ApplyOptInBatch(BatchRef("acc-1", self.RUN, 0),
                                         (OptInChange("ann@example.com", "Double"),)),
                         session_id="optin-0")
        return ReceivedMessage(message.message_id, message.body if body is None else body,
                               dict(message.application_properties), "optin-0", delivery_count)

    def test_an_unreadable_message_counts_a_dead_letter_with_its_run_and_reason(
        self, captured: Captured
    ) -> None:
        applier = self.applier(InMemorySyncStateStore(clock=lambda: self.NOW))
        result = apply_optin_delivery(self.received(b"not json"), applier)
        assert result.dead_lettered == "MessageFormatError"
        [(attributes, point)] = captured.points("connector.dead_letters")
        assert point.value == 1
        assert attributes == {"run_id": self.RUN, "email_account_id": "acc-1",
                              "sync_type": "ContactOptIn", "queue": "optin-q",
                              "dry_run": "false", "reason": "MessageFormatError"}
        assert captured.total("connector.records.failed", run_id=self.RUN) == 1

    def test_the_last_failed_delivery_counts_the_broker_s_dead_letter(
        self, captured: Captured
    ) -> None:
        applier = self.applier(InMemorySyncStateStore(clock=lambda: self.NOW))
        with pytest.raises(TransientError):
            apply_optin_delivery(self.received(delivery_count=3), applier)
        [(attributes, _)] = captured.points("connector.dead_letters")
        assert attributes["reason"] == "TransientError" and attributes["run_id"] == self.RUN
        # The batch was counted as failed and completed its run.
        assert captured.total("connector.records.failed") == 1
        assert len(captured.points("connector.run.duration")) == 1

    def test_an_earlier_failed_delivery_counts_nothing(self, captured: Captured) -> None:
        applier = self.applier(InMemorySyncStateStore(clock=lambda: self.NOW))
        with pytest.raises(TransientError):
            apply_optin_delivery(self.received(delivery_count=1), applier)
        assert captured.points("connector.dead_letters") == []
        assert captured.points("connector.records.failed") == []
        [span] = captured.spans.get_finished_spans()
        assert span.status.description == "TransientError"  # the class, never the message


class FakeSession:
    """A ``requests.Session`` that answers from a list of status codes."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response.headers["Retry-After"] = "0"
        response._content = b"{}"
        return response


def test_requests_and_throttled_responses_are_counted_for_the_run_they_were_sent_for(
    captured: Captured,
) -> None:
    stats = MeteredCallStats(System.DOTDIGITAL)
    session: Any = FakeSession(429, 200, 200)
    policy = RetryPolicy(sleep=lambda _: None)
    with telemetry.run_scope(run_id="run-7", email_account_id="acc-1",
                             sync_type=SyncType.SUPPRESSION_LISTS):
        for _ in range(2):
            send(session, "GET", "https://r1-api.dotdigital.com/v2/contacts/ann%40example.com",
                 system=System.DOTDIGITAL, operation="contact by email", policy=policy,
                 timeout_s=1, verify=True, stats=stats)
    assert (stats.requests, stats.throttled) == (3, 1)  # still the client's own counts
    scope = {"run_id": "run-7", "email_account_id": "acc-1", "sync_type": "SuppressionLists",
             "system": "dotdigital"}
    assert [attributes for attributes, _ in captured.points("connector.requests")] == [scope]
    assert captured.total("connector.requests", system="dotdigital") == 3
    assert captured.total("connector.requests.throttled", run_id="run-7") == 1


def test_calls_outside_any_scope_are_still_counted_without_run_dimensions(
    captured: Captured,
) -> None:
    stats = MeteredCallStats(System.DATAVERSE)
    stats.requests += 2
    assert [(attributes, point.value) for attributes, point in
            captured.points("connector.requests")] == [({"system": "dataverse"}, 2)]


def test_metered_call_stats_without_telemetry_only_count() -> None:
    stats = MeteredCallStats(System.DATAVERSE)
    stats.requests += 1
    stats.throttled += 1
    assert (stats.requests, stats.retries, stats.throttled) == (1, 0, 1)


def test_scopes_nest_and_end_with_their_block() -> None:
    assert telemetry.current() == telemetry.Dimensions()
    with telemetry.run_scope(run_id="r", queue="q"):
        with telemetry.run_scope(email_account_id="a", sync_type=SyncType.ENGAGEMENT):
            assert telemetry.current().attributes() == {
                "run_id": "r", "email_account_id": "a", "sync_type": "Engagement", "queue": "q"}
        assert telemetry.current().attributes() == {"run_id": "r", "queue": "q"}
    assert telemetry.current() == telemetry.Dimensions()


def test_the_filter_keeps_what_a_caller_passed_in_extra() -> None:
    record = logging.LogRecord("shared.x", logging.INFO, __file__, 1, "m", None, None)
    record.run_id = "given"
    with telemetry.run_scope(run_id="scope", email_account_id="a"):
        assert DimensionsFilter().filter(record)
    assert (record.run_id, record.email_account_id) == ("given", "a")


class TestConfiguration:
    WITH_CONNECTION = {configuration.CONNECTION_SETTING: "InstrumentationKey=k"}

    @pytest.fixture
    def distro(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
        """``configure_azure_monitor`` recorded, adding its handler as the real one does."""
        calls: list[dict[str, Any]] = []
        handler = logging.NullHandler()

        def configure(**kwargs: Any) -> None:
            calls.append(kwargs)
            logging.getLogger(kwargs["logger_name"]).addHandler(handler)

        monkeypatch.setattr(azure_monitor, "configure_azure_monitor", configure)
        monkeypatch.setattr(configuration, "_configured", None)
        try:
            yield calls
        finally:
            logging.getLogger(azure_monitor.LOGGER_NAME).removeHandler(handler)
            for other in logging.getLogger().handlers:  # the worker's case filters the root's
                for added in [f for f in other.filters if isinstance(f, DimensionsFilter)]:
                    other.removeFilter(added)
            telemetry.install(None)

    def test_without_a_connection_string_nothing_is_configured(
        self, distro: list[dict[str, Any]]
    ) -> None:
        assert configuration.configure_telemetry({}) is False
        assert configuration.configure_telemetry({configuration.CONNECTION_SETTING: " "}) is False
        assert distro == [] and isinstance(telemetry.telemetry(), telemetry.NoTelemetry)

    def test_with_one_the_distro_is_configured_once_for_the_app_s_loggers_without_http_spans(
        self, distro: list[dict[str, Any]]
    ) -> None:
        environ = self.WITH_CONNECTION
        assert configuration.configure_telemetry(environ) is True
        assert configuration.configure_telemetry(environ) is True  # a second build
        [call] = distro
        assert call["connection_string"] == "InstrumentationKey=k"
        assert call["logger_name"] == "shared"
        assert "credential" not in call  # the connection string's key signs it
        options = call["instrumentation_options"]
        assert {"requests", "urllib3", "azure_sdk"} <= options.keys()
        assert all(option == {"enabled": False} for option in options.values())
        assert isinstance(telemetry.telemetry(), OpenTelemetryTelemetry)
        [handler] = logging.getLogger("shared").handlers
        assert any(isinstance(f, DimensionsFilter) for f in handler.filters)

    def test_with_entra_only_ingestion_the_exporter_signs_with_the_managed_identity(
        self, distro: list[dict[str, Any]]
    ) -> None:
        from azure.identity import DefaultAzureCredential

        environ = {**self.WITH_CONNECTION,
                   configuration.AUTHENTICATION_SETTING: "Authorization=AAD"}
        assert configuration.configure_telemetry(environ) is True
        [call] = distro
        assert isinstance(call["credential"], DefaultAzureCredential)

    def test_when_the_worker_configured_the_distro_it_is_not_configured_again(
        self, distro: list[dict[str, Any]]
    ) -> None:
        environ = {**self.WITH_CONNECTION, configuration.WORKER_SETTING: "true"}
        assert configuration.configure_telemetry(environ) is True
        assert distro == [] and isinstance(telemetry.telemetry(), OpenTelemetryTelemetry)

    def test_a_failure_to_configure_leaves_the_app_running_without_telemetry(
        self, distro: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        def broken(**kwargs: Any) -> None:
            raise ValueError("InstrumentationKey=secret-ish is malformed")

        monkeypatch.setattr(azure_monitor, "configure_azure_monitor", broken)
        environ = {configuration.CONNECTION_SETTING: "InstrumentationKey=secret-ish"}
        assert configuration.configure_telemetry(environ) is False
        assert configuration.configure_telemetry(environ) is False  # not tried again
        assert isinstance(telemetry.telemetry(), telemetry.NoTelemetry)
        assert "ValueError" in caplog.text and "secret-ish" not in caplog.text


def test_without_the_setting_building_the_services_loads_nothing_of_opentelemetry() -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        import function_app
        from shared import bootstrap
        from shared.adapters.telemetry import configure_telemetry
        environ = {{**{ENVIRON!r}, "ServiceBusConnection": {SERVICE_BUS!r}}}
        bootstrap.build_services(environ)
        assert configure_telemetry(environ) is False
        print(json.dumps(sorted(name for name in sys.modules
                                if name.startswith(("opentelemetry", "azure.monitor")))))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            check=True, timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
