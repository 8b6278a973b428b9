"""Composition root: the only module that builds concrete adapters.

``services()`` builds everything once per worker process, on first use (never at import), from
the app settings in ``os.environ``. The hosting process may hand the app its queue publisher
(``use_publisher``: the dev host's local queues); in Azure nobody does and Service Bus is used.
Tests install their own services with ``override(...)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.programs import DataverseCrmPrograms
from shared.adapters.dataverse.records import DataverseCrmRecords
from shared.adapters.dataverse.records_as_user import DataverseRecordsAsUser
from shared.adapters.dataverse.settings_tables import DataverseCrmSettings
from shared.adapters.dataverse.suppressions import DataverseCrmSuppressions
from shared.adapters.dotdigital.engagement import DotdigitalEngagement
from shared.adapters.dotdigital.enrolments import DotdigitalEnrolments
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.identity.entra import EntraTokenProvider
from shared.adapters.identity.managed_identity import managed_identity
from shared.adapters.identity.user_tokens import UserTokenValidator
from shared.adapters.servicebus.message_codec import JsonMessageCodec
from shared.adapters.servicebus.publisher import ServiceBusBatchPublisher
from shared.adapters.storage.account import table_service
from shared.adapters.storage.event_store import TableEventStore
from shared.adapters.storage.run_journal import TableRunJournal
from shared.adapters.storage.sync_state import DEFAULT_TABLE as SYNC_STATE_TABLE
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.adapters.telemetry import MeteredCallStats, configure_telemetry
from shared.config import Settings, load_settings
from shared.errors import System
from shared.services.engagement.applier import EngagementApplier
from shared.services.engagement.reader import EngagementReader
from shared.services.enrolment.service import EnrolmentService
from shared.services.optin.applier import Applier
from shared.services.optin.reader import OptInReader
from shared.services.ports import (
    BatchPublisher,
    CrmPrograms,
    CrmRecords,
    CrmRecordsAsUser,
    CrmSettings,
    CrmSuppressions,
    EmailPlatform,
    EngagementSource,
    EventStore,
    MessageCodec,
    ProgramEnrolments,
    RunJournal,
    SyncStateStore,
)
from shared.services.programs.mirror import ProgramsMirror
from shared.services.suppression.applier import SuppressionApplier
from shared.services.suppression.reader import SuppressionReader
from shared.services.sync.cycle import SyncReader
from shared.services.sync.schedules import ScheduleKeeper
from shared.services.timeline import TimelineService


@dataclass
class Services:
    settings: Settings
    crm_settings: CrmSettings
    crm_records: CrmRecords
    crm_suppressions: CrmSuppressions
    email_platform: EmailPlatform
    run_journal: RunJournal
    sync_state: SyncStateStore
    publisher: BatchPublisher
    codec: MessageCodec
    crm_programs: CrmPrograms
    user_tokens: UserTokenValidator
    records_as_user: CrmRecordsAsUser
    enrolments: ProgramEnrolments
    engagement_source: EngagementSource
    event_store: EventStore

    def optin_reader(self) -> OptInReader:
        """The timer side of the opt-in sync, for one invocation."""
        return OptInReader(
            platform=self.email_platform, state=self.sync_state, publisher=self.publisher,
            schedules=ScheduleKeeper(self.crm_settings), queue=self.settings.queues.optin_queue,
            settings=self.settings.sync,
        )

    def suppression_reader(self) -> SuppressionReader:
        """The timer side of the SuppressionLists sync, for one invocation."""
        return SuppressionReader(
            platform=self.email_platform, crm=self.crm_suppressions,
            crm_settings=self.crm_settings, state=self.sync_state,
            publisher=self.publisher, schedules=ScheduleKeeper(self.crm_settings),
            queue=self.settings.queues.suppression_queue, settings=self.settings.sync,
        )

    def engagement_reader(self) -> EngagementReader:
        """The timer side of the Engagement sync, for one invocation."""
        return EngagementReader(
            platform=self.email_platform, source=self.engagement_source, state=self.sync_state,
            publisher=self.publisher, schedules=ScheduleKeeper(self.crm_settings),
            queue=self.settings.queues.engagement_queue, settings=self.settings.sync,
        )

    def engagement_applier(self) -> EngagementApplier:
        """The queue side of the Engagement sync."""
        return EngagementApplier(
            store=self.event_store, schedules=ScheduleKeeper(self.crm_settings),
            state=self.sync_state, publisher=self.publisher, codec=self.codec,
            queue=self.settings.queues.engagement_queue,
            max_delivery_count=self.settings.sync.engagement_max_delivery_count,
        )

    def readers(self) -> list[SyncReader]:
        """Every sync's timer side, in the order a cycle runs them."""
        return [self.optin_reader(), self.suppression_reader(), self.engagement_reader()]

    def suppression_applier(self) -> SuppressionApplier:
        """The queue side of the SuppressionLists sync."""
        return SuppressionApplier(
            crm=self.crm_suppressions, schedules=ScheduleKeeper(self.crm_settings),
            state=self.sync_state, publisher=self.publisher, codec=self.codec,
            queue=self.settings.queues.suppression_queue,
            max_delivery_count=self.settings.sync.suppression_max_delivery_count,
        )

    def programs_mirror(self) -> ProgramsMirror:
        """The ``ec_program`` mirror of the accounts' programs."""
        return ProgramsMirror(self.email_platform, self.crm_programs, self.sync_state)

    def enrolment_service(self) -> EnrolmentService:
        """What the ribbon API's calls use."""
        return EnrolmentService(
            settings=self.crm_settings, programs=self.crm_programs,
            mirror=self.programs_mirror(), records=self.records_as_user,
            platform=self.enrolments,
        )

    def timeline_service(self) -> TimelineService:
        """What the timeline API's calls use."""
        return TimelineService(self.records_as_user, self.event_store)

    def optin_applier(self) -> Applier:
        """The queue side of the opt-in sync."""
        return Applier(
            crm_records=self.crm_records, schedules=ScheduleKeeper(self.crm_settings),
            state=self.sync_state, publisher=self.publisher, codec=self.codec,
            queue=self.settings.queues.optin_queue,
            max_delivery_count=self.settings.sync.optin_max_delivery_count,
        )


_lock = threading.Lock()
_built: Services | None = None
_override: Services | None = None
_hosted_publisher: BatchPublisher | None = None


def build_services(
    environ: dict[str, str], *, publisher: BatchPublisher | None = None
) -> Services:
    configure_telemetry(environ)  # first: a settings error below is then sent too
    settings = load_settings(environ)
    tokens = EntraTokenProvider(settings.entra, settings.http)
    dataverse = DataverseClient(
        settings.dataverse, settings.http, lambda: tokens.app_token(settings.dataverse.scope),
        stats=MeteredCallStats(System.DATAVERSE),
    )
    # One credential for every table and the Service Bus client.
    credential = managed_identity() if needs_identity(settings) else None
    tables = table_service(settings.state, credential=credential)
    platform = DotdigitalEmailPlatform(settings.dotdigital, settings.http, environ,
                                       stats=MeteredCallStats(System.DOTDIGITAL))
    return Services(
        settings=settings,
        crm_settings=DataverseCrmSettings(dataverse),
        crm_records=DataverseCrmRecords(dataverse),
        crm_suppressions=DataverseCrmSuppressions(dataverse),
        email_platform=platform,
        run_journal=TableRunJournal(tables),
        sync_state=TableSyncStateStore(tables.get_table_client(SYNC_STATE_TABLE)),
        publisher=publisher or ServiceBusBatchPublisher.from_settings(
            settings.queues, credential=credential
        ),
        codec=JsonMessageCodec(),
        crm_programs=DataverseCrmPrograms(dataverse),
        user_tokens=UserTokenValidator(settings.entra, http=settings.http),
        records_as_user=DataverseRecordsAsUser(settings.dataverse, settings.http,
                                               tokens.user_token),
        enrolments=DotdigitalEnrolments(platform),
        engagement_source=DotdigitalEngagement(platform),
        event_store=TableEventStore(tables),
    )


def needs_identity(settings: Settings) -> bool:
    """Whether a storage or Service Bus connection is made with the managed identity."""
    return not settings.state.connection_string or not settings.queues.connection_string


def services() -> Services:
    """The process's services, built on first use."""
    global _built
    if _override is not None:
        return _override
    with _lock:
        if _built is None:
            _built = build_services(dict(os.environ), publisher=_hosted_publisher)
        return _built


def use_publisher(publisher: BatchPublisher | None) -> None:
    """The hosting process hands the app the publisher to use (None: Service Bus again).

    Takes effect for services built from then on (``reset`` forgets the built ones).
    """
    global _hosted_publisher
    with _lock:
        _hosted_publisher = publisher


@contextmanager
def override(replacement: Services) -> Iterator[Services]:
    """Use ``replacement`` instead of the real services inside the block (tests)."""
    global _override
    previous, _override = _override, replacement
    try:
        yield replacement
    finally:
        _override = previous


def reset() -> None:
    """Forget the built services: the next ``services()`` builds them from the settings then in
    ``os.environ`` (the dev host's local stacks run one after another in one process)."""
    global _built
    with _lock:
        _built = None
