"""Queue triggers: batches published by the sync timer, applied to Dynamics.

The opt-in queue is session-enabled: the reader puts every address of one shard in one session
and Service Bus hands a session to one consumer at a time, so no two invocations write the same
record at once (``host.json`` caps the sessions processed concurrently for Dataverse's limits).
An undecodable message raises ``MessageFormatError``: it is retried to the maximum delivery count
and then dead-lettered with that reason. When its application properties name its run and batch
(``encode`` puts them there), the last delivery first counts its items as failed in that run, so
the run completes and its schedule reports them instead of staying in progress.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.entrypoints.messages import OptInBatch, batch_identity, decode_as
from shared.errors import MessageFormatError
from shared.services.optin.applier import Applier, apply_optin_batch, count_undecodable_batch

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("ApplyOptInBatch")
@bp.service_bus_queue_trigger(
    arg_name="message",
    queue_name="%OPTIN_QUEUE_NAME%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def apply_optin(message: func.ServiceBusMessage) -> None:
    services = bootstrap.services()
    applier = Applier(
        crm_records=services.crm_records,
        crm_settings=services.crm_settings,
        state=services.sync_state,
        max_delivery_count=services.settings.sync.optin_max_delivery_count,
    )
    delivery_count = message.delivery_count or 1
    try:
        batch = decode_as(OptInBatch, message.get_body())
    except MessageFormatError as error:
        named = batch_identity(message.application_properties)
        if named is not None:
            count_undecodable_batch(
                applier, error, account=named.account, run_id=named.run_id, batch=named.batch,
                items=named.items, dry_run=named.dry_run, delivery_count=delivery_count,
            )
        raise
    result = apply_optin_batch(batch, applier, delivery_count=delivery_count)
    logger.info(
        "opt-in batch run=%s account=%s batch=%d applied_now=%s counters=%s",
        batch.run_id, batch.account, batch.batch, result.outcome.applied_now, result.counters,
    )
