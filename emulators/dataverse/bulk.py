"""``CreateMultiple``, ``UpdateMultiple`` and ``UpsertMultiple`` bound to an entity set.

On standard tables these are all-or-nothing: every target is checked and written inside one
transaction, and the first failure undoes the lot and becomes the response. ``DeleteMultiple``
exists only for elastic tables, which this environment has none of.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from emulators.dataverse import errors
from emulators.dataverse.calls import ApiCall, Outcome
from emulators.dataverse.payload import ENTITY_REFERENCE, decode, parse_key
from emulators.dataverse.resource import Preferences, Resource
from emulators.dataverse.schema import Table
from emulators.dataverse.writes import apply_create, apply_update, read_json
from emulators.http import Response

if TYPE_CHECKING:
    from emulators.dataverse.api import DataverseApi

MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def run_action(
    api: DataverseApi, table: Table, resource: Resource, call: ApiCall, prefs: Preferences
) -> Outcome:
    message = resource.action or ""
    if message == "DeleteMultiple":
        raise errors.invalid_argument("DeleteMultiple has not yet been implemented.")
    if message not in MESSAGES:
        raise errors.segment_not_found(f"Microsoft.Dynamics.CRM.{message}")
    if table.logical_name in api.features.bulk_unsupported_tables:
        raise errors.invalid_argument(
            f"The '{message}' method does not support entities of type '{table.logical_name}'. "
            "MessageProcessorCache returned MessageProcessor.Empty."
        )
    targets = _targets(read_json(call, table), table)
    ids: list[str] = []
    with api.atomic():
        for target in targets:
            ids.append(_apply(api, table, message, target, call))
    if message == "CreateMultiple":
        context = f"{api.api_url}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
        payload = {"@odata.context": context, "Ids": ids}
        return Outcome(api.json_response(200, payload), bulk_written=len(ids))
    return Outcome(Response.empty(204, [("OData-Version", "4.0")]), bulk_written=len(ids))


def _targets(body: Any, table: Table) -> list[dict[str, Any]]:
    targets = body.get("Targets") if isinstance(body, dict) else None
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise errors.payload_error(
            table.entity_set,
            "Microsoft.OData.ODataException: The parameter 'Targets' of the action must be a "
            "collection of entities.",
        )
    for target in targets:
        declared = target.get("@odata.type")
        if declared is None:
            raise errors.payload_error(
                table.entity_set,
                "Microsoft.OData.ODataException: A resource without a type name was found, but no "
                "expected type was specified. To allow entries without type information, the "
                "expected type must also be specified when the model is specified.",
            )
        if declared not in (table.type_name, f"#{table.type_name}"):
            raise errors.invalid_argument(
                f"All Targets must be of type '{table.type_name}' for the entity set "
                f"'{table.entity_set}', but one is '{declared}'."
            )
    return targets


def _apply(
    api: DataverseApi, table: Table, message: str, target: dict[str, Any], call: ApiCall
) -> str:
    rows = api.store.tables[table.logical_name]
    values = decode(target, api.write_rules(table, call))
    key = values.pop(table.primary_key, None) or _key_from_id(target, table)
    if message == "CreateMultiple":
        key = key or str(uuid.uuid4())
        if rows.get(key) is not None:
            raise errors.duplicate_record()
        apply_create(api, table, values, key, owner=call.caller.principal_id)
        return key
    if key is None:
        raise errors.invalid_argument(f"Entity Id must be specified for {message[:-8]}")
    existing = rows.get(key)
    if existing is None and message == "UpdateMultiple":
        raise errors.record_not_found(table.logical_name, key)
    if existing is None:
        apply_create(api, table, values, key, owner=call.caller.principal_id)
    else:
        call.caller.check_row(table, existing, "Write")
        apply_update(api, table, existing, values)
    return key


def _key_from_id(target: dict[str, Any], table: Table) -> str | None:
    """The primary key of an ``@odata.id`` such as ``contacts(<guid>)``, if there is one."""
    reference = target.get("@odata.id")
    if not isinstance(reference, str):
        return None
    match = ENTITY_REFERENCE.match(reference.rsplit("/", 1)[-1])
    if match is None or match.group("set") != table.entity_set:
        raise errors.invalid_argument(
            f"The @odata.id '{reference}' does not identify a row of '{table.entity_set}' by its "
            "primary key; no alternate keys are defined."
        )
    return parse_key(match.group("key"))
