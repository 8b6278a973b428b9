"""Routing of metadata requests: which resource a path addresses and which handler serves it.

Paths (after the version root)::

    EntityDefinitions[(<key>)]                             GET, POST / GET, PUT
    EntityDefinitions(<key>)/Attributes[/<cast>]           GET, POST
    EntityDefinitions(<key>)/Attributes(<key>)[/<cast>]    GET, PUT, DELETE
    EntityDefinitions(<key>)/ManyToOneRelationships        GET (and the other relationship sets)
    GlobalOptionSetDefinitions[(<key>)]                    GET, POST / GET, PUT
    RelationshipDefinitions[(<key>)][/<cast>]              GET, POST / GET
    InsertOptionValue, UpdateOptionValue, DeleteOptionValue, PublishXml, PublishAllXml   POST

A key is a ``MetadataId`` or the alternate key (``LogicalName='x'``, ``Name='x'``,
``SchemaName='x'``), compared exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from emulators.dataverse import errors
from emulators.dataverse.calls import ApiCall, Outcome
from emulators.dataverse.metadata import choices, failures, relationships, tables
from emulators.dataverse.metadata.context import Key, MetadataCall
from emulators.dataverse.metadata.query import GUID

if TYPE_CHECKING:
    from emulators.dataverse.api import DataverseApi

SETS = frozenset({"EntityDefinitions", "GlobalOptionSetDefinitions", "RelationshipDefinitions"})
ACTIONS = frozenset({"InsertOptionValue", "UpdateOptionValue", "DeleteOptionValue",
                     "PublishXml", "PublishAllXml"})
RELATIONSHIP_SETS = frozenset({"ManyToOneRelationships", "OneToManyRelationships",
                               "ManyToManyRelationships", "Keys"})
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z.]+)(?:\((?P<key>.*)\))?$")
_ALTERNATE = re.compile(r"^(?P<name>[A-Za-z]+)='(?P<value>(?:[^']|'')*)'$")


@dataclass(frozen=True)
class Segment:
    name: str
    key: Key | None


def is_metadata_path(path: str) -> bool:
    head = unquote(path).split("/", 1)[0].split("(", 1)[0]
    return head in SETS or head in ACTIONS


def run_metadata(api: DataverseApi, call: ApiCall) -> Outcome:
    segments = [_segment(part) for part in unquote(call.path).split("/")]
    request = MetadataCall(api, call)
    handler = _route(call.method, segments)
    if handler is None:
        raise errors.no_http_resource(api.api_url + call.path)
    with api.lock:
        if call.method != "GET" and api.store.in_transaction:
            # A change set undoes rows, not definitions: a metadata write cannot be part of one.
            raise failures.not_emulated("A metadata change inside a change set")
        return handler(request)


def _segment(text: str) -> Segment:
    found = _SEGMENT.match(text)
    if found is None:
        raise errors.segment_not_found(text)
    raw_key = found.group("key")
    return Segment(found.group("name"), None if raw_key is None else _key(raw_key))


def _key(text: str) -> Key:
    if GUID.match(text):
        return Key(metadata_id=text.lower())
    found = _ALTERNATE.match(text)
    if found is None:
        raise failures.query(f"Bad Request - Error in query syntax: the key '{text}'.")
    return Key(name=found.group("name"), value=found.group("value").replace("''", "'"))


Handler = Callable[[MetadataCall], Outcome]


def _route(method: str, segments: list[Segment]) -> Handler | None:
    head, rest = segments[0], segments[1:]
    if head.name in ACTIONS:
        if method != "POST" or rest or head.key is not None:
            return None
        return choices.ACTION_HANDLERS[head.name]
    if head.name == "EntityDefinitions":
        return _entity_route(method, head.key, rest)
    if head.name == "GlobalOptionSetDefinitions":
        rest = _without_cast(rest, "OptionSetMetadata")
        if rest:
            return None
        if head.key is None:
            return {"GET": choices.list_option_sets, "POST": choices.create_option_set}.get(method)
        key = head.key
        return _bound(method, {"GET": choices.get_option_set, "PUT": choices.update_option_set,
                               "DELETE": _not_emulated("Deleting a global choice")}, key)
    if head.name == "RelationshipDefinitions":
        rest = _without_cast(rest, "OneToManyRelationshipMetadata", "RelationshipMetadataBase")
        if rest:
            return None
        if head.key is None:
            return {"GET": relationships.list_all, "POST": relationships.create}.get(method)
        return _bound(method, {"GET": relationships.get_one}, head.key)
    return None


def _not_emulated(what: str) -> Callable[[MetadataCall, Key], Outcome]:
    def refuse(request: MetadataCall, key: Key) -> Outcome:
        raise failures.not_emulated(what)

    return refuse


def _without_cast(rest: list[Segment], *casts: str) -> list[Segment]:
    if rest and rest[0].key is None and rest[0].name in {f"Microsoft.Dynamics.CRM.{c}"
                                                          for c in casts}:
        return rest[1:]
    return rest


def _bound(method: str, handlers: dict[str, Callable[[MetadataCall, Key], Outcome]],
           key: Key) -> Handler | None:
    handler = handlers.get(method)
    if handler is None:
        return None
    return lambda request: handler(request, key)


def _entity_route(method: str, key: Key | None, rest: list[Segment]) -> Handler | None:
    if key is None:
        if rest:
            return None
        return {"GET": tables.list_entities, "POST": tables.create_entity}.get(method)
    if not rest:
        return _bound(method, {"GET": tables.get_entity, "PUT": tables.update_entity,
                               "DELETE": _not_emulated("Deleting a table")}, key)
    first, tail = rest[0], rest[1:]
    if first.name in RELATIONSHIP_SETS and first.key is None and not tail:
        if method != "GET":
            return None
        return lambda request: relationships.of_entity(request, key, first.name)
    if first.name != "Attributes":
        return None
    cast = None
    if tail:
        if len(tail) != 1 or tail[0].key is not None:
            return None
        cast = tail[0].name
    attribute_key = first.key
    if attribute_key is None:
        if method == "GET":
            return lambda request: tables.list_attributes(request, key, cast)
        if method == "POST" and cast is None:
            return lambda request: tables.create_attribute(request, key)
        return None
    if method == "GET":
        return lambda request: tables.get_attribute(request, key, attribute_key, cast)
    if cast is not None:
        return None
    if method == "PUT":
        return lambda request: tables.update_attribute(request, key, attribute_key)
    if method == "DELETE":
        return lambda request: tables.delete_attribute(request, key, attribute_key)
    return None
