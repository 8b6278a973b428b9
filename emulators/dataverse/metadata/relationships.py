"""``RelationshipDefinitions`` (one-to-many, with their lookup columns) and the relationship sets
of a table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.dataverse.calls import Outcome
from emulators.dataverse.metadata import changes, failures, parse
from emulators.dataverse.metadata.catalog import RelationshipName
from emulators.dataverse.metadata.context import Key, MetadataCall
from emulators.dataverse.metadata.query import parse_options
from emulators.dataverse.metadata.render import RELATIONSHIP_PROPERTIES, Relationship
from emulators.dataverse.schema import Table


def _matching(request: MetadataCall, key: Key) -> Relationship:
    view = request.view
    for relationship in view.relationships():
        if key.metadata_id is not None:
            if view.id(f"relationship/{relationship.schema_name}") == key.metadata_id:
                return relationship
        elif key.name == "SchemaName" and relationship.schema_name == key.value:
            return relationship
    if key.metadata_id is None and key.name != "SchemaName":
        raise failures.query(f"'{key.name}' is not a key of RelationshipDefinitions.")
    raise failures.relationship_not_found(str(key))


def list_all(request: MetadataCall) -> Outcome:
    options = request.options("RelationshipMetadataBase", RELATIONSHIP_PROPERTIES)
    view = request.view
    items = [options.project(item) for item in map(view.relationship, view.relationships())
             if options.matches(item)]
    return request.collection("RelationshipDefinitions", items)


def get_one(request: MetadataCall, key: Key) -> Outcome:
    options = request.options("OneToManyRelationshipMetadata", RELATIONSHIP_PROPERTIES)
    item = request.view.relationship(_matching(request, key))
    return request.entity("RelationshipDefinitions", options.project(item))


def of_entity(request: MetadataCall, key: Key, name: str) -> Outcome:
    from emulators.dataverse.metadata.tables import find_table

    table = find_table(request, key)
    items = expand_relationships(request, table, name, request.raw_options)
    context = f"EntityDefinitions({request.view.id('entity/' + table.logical_name)})/{name}"
    return request.collection(context, items)


def expand_relationships(request: MetadataCall, table: Table, name: str,
                         raw_options: Mapping[str, str]) -> list[dict[str, Any]]:
    """A table's ``ManyToOneRelationships`` (its lookups) or ``OneToManyRelationships`` (the
    lookups to it); many-to-many relationships and keys are not modelled, so always empty."""
    options = parse_options(raw_options, type_short="OneToManyRelationshipMetadata",
                            properties=RELATIONSHIP_PROPERTIES)
    view = request.view
    if name == "ManyToOneRelationships":
        chosen = [r for r in view.relationships() if r.referencing == table.logical_name]
    elif name == "OneToManyRelationships":
        chosen = [r for r in view.relationships() if r.referenced == table.logical_name]
    else:
        chosen = []
    return [options.project(item) for item in map(view.relationship, chosen)
            if options.matches(item)]


def create(request: MetadataCall) -> Outcome:
    request.require_customizer("prvCreateRelationship")
    api, view = request.api, request.view
    parsed = parse.relationship(request.body(), api.schema, hidden=api.hidden_tables)
    if any(r.schema_name.lower() == parsed.schema_name.lower() for r in view.relationships()):
        raise failures.not_unique("relationship", parsed.schema_name)
    referencing = api.schema.tables[parsed.referencing]
    column = parsed.lookup.column
    if column.name in referencing.columns or any(
            existing.schema_name.lower() == column.name
            for existing in referencing.columns.values()):
        raise failures.duplicate_attribute(column.schema_name, parsed.referencing)
    catalog = api.catalog
    catalog.relationships[(parsed.referencing, column.name, parsed.referenced)] = (
        RelationshipName(parsed.schema_name, parsed.referenced_navigation, parsed.cascade))
    component = f"attribute/{parsed.referencing}/{column.name}"
    for prop, label in parsed.lookup.labels.items():
        catalog.set_label(component, prop, label)
    catalog.custom_columns.add((parsed.referencing, column.name))
    request.record_solution(f"relationship/{parsed.schema_name}")
    request.record_solution(component)
    request.commit(changes.with_column(api.schema, parsed.referencing, column))
    return request.created(
        f"RelationshipDefinitions({view.id('relationship/' + parsed.schema_name)})")
