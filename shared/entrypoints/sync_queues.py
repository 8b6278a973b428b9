"""Queue triggers: batches published by the sync timer, applied to Dynamics.

Both queues are session-enabled: the readers put every address of one shard in one session
and Service Bus hands a session to one consumer at a time, so no two invocations write the same
record at once (``host.json`` caps the sessions processed concurrently for Dataverse's limits).
What a delivery does, including when it is dead-lettered, is the applier's decision
(``shared/services/sync/delivery.py``); this module only translates.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.domain.model import SyncType
from shared.services.engagement.applier import apply_engagement_delivery
from shared.services.optin.applier import apply_optin_delivery
from shared.services.ports import ReceivedMessage
from shared.services.suppression.applier import apply_suppression_delivery
from shared.services.sync.delivery import ApplyResult
from shared.services.telemetry import batch_scope

logger = logging.getLogger(__name__)
bp = func.Blueprint()


def received(message: func.ServiceBusMessage) -> ReceivedMessage:
    """The delivery as the services see it."""
    return ReceivedMessage(
        message_id=message.message_id or "", body=message.get_body(),
        application_properties=dict(message.application_properties or {}),
        session_id=message.session_id, delivery_count=message.delivery_count or 1,
    )


@bp.function_name("ApplyOptInBatch")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name="%OPTIN_QUEUE_NAME%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def apply_optin(message: func.ServiceBusMessage) -> None:
    result = apply_optin_delivery(received(message), bootstrap.services().optin_applier())
    _log("opt-in", SyncType.CONTACT_OPT_IN, message, result)


@bp.function_name("ApplySuppressionBatch")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name="%SUPPRESSION_QUEUE_NAME%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def apply_suppression(message: func.ServiceBusMessage) -> None:
    applier = bootstrap.services().suppression_applier()
    _log("suppression", SyncType.SUPPRESSION_LISTS, message,
         apply_suppression_delivery(received(message), applier))


@bp.function_name("ApplyEngagementBatch")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name="%ENGAGEMENT_QUEUE_NAME%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def apply_engagement(message: func.ServiceBusMessage) -> None:
    applier = bootstrap.services().engagement_applier()
    _log("engagement", SyncType.ENGAGEMENT, message,
         apply_engagement_delivery(received(message), applier))


def _log(
    label: str, sync_type: SyncType, message: func.ServiceBusMessage, result: ApplyResult
) -> None:
    with batch_scope(result.ref, sync_type):  # the line carries the batch's run, as its work did
        logger.info(
            "%s message %s delivery %d: applied_now=%s dead_lettered=%s counters=%s",
            label, message.message_id, message.delivery_count or 1, result.applied_now,
            result.dead_lettered, result.counters,
        )
