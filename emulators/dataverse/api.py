"""The Web API operations, callable from a route or from inside a ``$batch``.

``DataverseApi.execute`` takes one ``ApiCall`` (method, resource path, query, headers, body) and
returns an ``Outcome``: the response plus how many records it read and wrote, which the cost
model prices. Authentication and service protection happen around it, in the emulator, so a
``$batch`` is checked once and its operations run through exactly the same code as single calls.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Literal

from emulators.clock import Clock
from emulators.dataverse import bulk, errors, reads, writes
from emulators.dataverse.calls import ApiCall, Features, Identity, Outcome
from emulators.dataverse.errors import JSON_CONTENT_TYPE, DataverseError
from emulators.dataverse.metadata import is_metadata_path, run_metadata
from emulators.dataverse.metadata.catalog import Catalog
from emulators.dataverse.metadata.changes import standard_only
from emulators.dataverse.payload import WriteRules
from emulators.dataverse.resource import Preferences, Resource, parse_preferences, parse_resource
from emulators.dataverse.schema import Schema, Table, with_owner_columns
from emulators.dataverse.security import Access, Privilege, Security
from emulators.dataverse.store import DataStore
from emulators.http import Response

API_ROOT = "/api/data/v9.2/"
# Where the environment's metadata starts: the whole schema file ("connector"), or only the tables
# Dataverse ships, without the connector's columns and choices ("standard", an environment the
# connector's schema has not been provisioned in yet).
Baseline = Literal["connector", "standard"]
BASELINES: tuple[Baseline, ...] = ("connector", "standard")


class DataverseApi:
    def __init__(self, schema: Schema, clock: Clock, lock: threading.RLock) -> None:
        # Ownership (``ownerid``) is a platform column the schema file leaves out.
        self.connector_schema = schema = with_owner_columns(schema)
        self.clock = clock
        self.lock = lock
        self.store = DataStore(schema)
        self.security = Security()
        self._features = Features()
        self.base_url = ""
        self.baseline: Baseline = "connector"
        self.schema = schema
        self._by_entity_set = schema.by_entity_set()
        self.catalog = Catalog.for_schema(schema)

    def replace_schema(self, schema: Schema) -> None:
        """Run on ``schema`` from now on (a metadata change); caller holds the lock."""
        self.schema = schema
        self._by_entity_set = schema.by_entity_set()
        self.store.use_schema(schema)

    def use_baseline(self, baseline: Baseline) -> None:
        """Start the metadata again from ``baseline``; rows of the standard tables are kept,
        without the connector's columns when the baseline is ``standard``."""
        schema = self.connector_schema
        if baseline == "standard":
            schema = standard_only(schema)
        self.baseline = baseline
        self.catalog = Catalog.for_schema(schema)
        self.replace_schema(schema)

    @property
    def features(self) -> Features:
        return self._features

    @features.setter
    def features(self, value: Features) -> None:
        # The store's indexes must be keyed by the collation the queries compare under.
        self._features = value
        self.store.use_collation(value.collation)

    @property
    def api_url(self) -> str:
        return self.base_url + API_ROOT

    @property
    def hidden_tables(self) -> frozenset[str]:
        return frozenset() if self.features.lead_table_enabled else frozenset({"lead"})

    def table_for_set(self, entity_set: str) -> Table:
        """The table of a (case-sensitive) entity set name, or the documented 404."""
        table = self._by_entity_set.get(entity_set)
        if table is None or table.logical_name in self.hidden_tables:
            raise errors.segment_not_found(entity_set)
        return table

    def write_rules(
        self, table: Table, call: ApiCall | None, *, seeding: bool = False
    ) -> WriteRules:
        resolve = call.resolve_reference if call and call.resolve_reference else _no_references
        return WriteRules(
            entity_set=table.entity_set, table=table, tables=self.schema.tables,
            row_exists=self.row_exists, hidden_tables=self.hidden_tables,
            resolve_reference=resolve, seeding=seeding,
        )

    def row_exists(self, logical_name: str, key: str) -> bool:
        return self.store.tables[logical_name].get(key) is not None

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Hold the data lock and undo every write if the block raises."""
        with self.lock, self.store.transaction():
            yield

    def system_user_id(self, oid: str) -> str:
        """The ``systemuserid`` of the principal with Entra object id ``oid``."""
        seeded = self.security.users.get(oid.lower())
        return seeded.systemuserid if seeded is not None else self.stable_id("systemuser", oid)

    def access_for(self, identity: Identity) -> Access:
        principal = self.system_user_id(identity.oid)
        if identity.application or not self.security.enforced:
            return Access(principal_id=principal)
        seeded = self.security.users.get(identity.oid.lower())
        return Access(
            principal_id=principal, depths=dict(seeded.read) if seeded is not None else {},
            schema_tables=self.schema.tables,
        )

    def execute(self, call: ApiCall, identity: Identity) -> Outcome:
        try:
            return self._execute(replace(call, access=self.access_for(identity)), identity)
        except DataverseError as failure:
            return Outcome(failure.response())

    def _execute(self, call: ApiCall, identity: Identity) -> Outcome:
        if is_metadata_path(call.path):
            return run_metadata(self, call)
        if call.path in ("WhoAmI", "WhoAmI()"):
            if call.method != "GET":
                raise errors.no_http_resource(self.api_url + call.path)
            return Outcome(self.json_response(200, self._who_am_i(identity)))
        resource = parse_resource(call.path)
        prefs = parse_preferences(call.headers)
        if resource.entity_set == "sdkmessagefilters" and call.method == "GET":
            return reads.message_filters(self, call)
        table = self.table_for_set(resource.entity_set)
        operation = _route(call.method, resource)
        if operation is None:
            raise errors.no_http_resource(self.api_url + call.path)
        # A table the caller holds no depth on is refused before anything is looked up; rows
        # outside a ``user`` depth are filtered or refused by the operation itself.
        call.caller.require(table, _privilege(call.method, resource))
        return operation(self, table, resource, call, prefs)

    def json_response(
        self, status: int, payload: Any, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return Response(
            status, [("Content-Type", JSON_CONTENT_TYPE), ("OData-Version", "4.0"),
                     *(headers or [])], body,
        )

    def stable_id(self, *parts: str) -> str:
        """A GUID that is the same for the same environment and name, run after run."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join((self.base_url, *parts))))

    def _who_am_i(self, identity: Identity) -> dict[str, str]:
        return {
            "@odata.context": f"{self.api_url}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": self.stable_id("businessunit"),
            "UserId": self.system_user_id(identity.oid),
            "OrganizationId": self.stable_id("organization"),
        }


Operation = Callable[[DataverseApi, Table, Resource, ApiCall, Preferences], Outcome]


def _route(method: str, resource: Resource) -> Operation | None:
    if resource.action is not None:
        return bulk.run_action if method == "POST" else None
    if resource.count:
        return reads.count_rows if method == "GET" else None
    if resource.key is None:
        return {"GET": reads.read_collection, "POST": writes.create}.get(method)
    if resource.property is not None:
        return {
            "GET": reads.read_property, "PUT": writes.put_property,
            "DELETE": writes.delete_property,
        }.get(method)
    return {"GET": reads.read_entity, "PATCH": writes.upsert, "DELETE": writes.delete}.get(method)


def _privilege(method: str, resource: Resource) -> Privilege:
    if method == "GET":
        return "Read"
    if method == "POST":
        return "Create" if resource.action in (None, "CreateMultiple") else "Write"
    if method == "DELETE" and resource.property is None:
        return "Delete"
    return "Write"


def _no_references(value: str) -> str:
    raise DataverseError(
        400, "0x0", f"Content-ID Reference: '{value}' does not exist in the batch context."
    )
