"""``EntityDefinitions`` and their ``Attributes``: read, create, update, delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from emulators.dataverse import errors
from emulators.dataverse.calls import Outcome
from emulators.dataverse.metadata import changes, failures, parse
from emulators.dataverse.metadata.context import Key, MetadataCall
from emulators.dataverse.metadata.names import KNOWN_ATTRIBUTE_TYPES, short_type
from emulators.dataverse.metadata.query import Options, parse_options
from emulators.dataverse.metadata.relationships import expand_relationships
from emulators.dataverse.metadata.render import (
    BASE_ATTRIBUTE_PROPERTIES,
    DERIVED_PROPERTIES,
    ENTITY_NAVIGATION,
    ENTITY_PROPERTIES,
    OPTION_SET_NAVIGATION,
    OPTION_SET_PROPERTIES,
    OPTION_SET_TYPES,
    SYSTEM_COLUMNS,
    View,
    attribute_type_short,
    humanized,
)
from emulators.dataverse.schema import Column, Table, system_columns


# --- finding -------------------------------------------------------------------------------------
def find_table(request: MetadataCall, key: Key) -> Table:
    view = request.view
    if key.metadata_id is not None:
        table = view.table_by_id(key.metadata_id)
        if table is None:
            raise failures.entity_id_not_found(key.metadata_id)
        return table
    if key.name != "LogicalName":
        raise failures.query(f"'{key.name}' is not a key of EntityDefinitions.")
    assert key.value is not None
    table = view.table(key.value)
    if table is None:
        raise failures.entity_not_found(key.value)
    return table


def find_column(request: MetadataCall, table: Table, key: Key) -> Column:
    if key.metadata_id is not None:
        column = request.view.column_by_id(table, key.metadata_id)
    elif key.name == "LogicalName":
        column = table.columns.get(key.value or "")
    else:
        raise failures.query(f"'{key.name}' is not a key of Attributes.")
    if column is None:
        raise failures.attribute_not_found(table.logical_name, str(key))
    return column


def _cast(cast: str | None) -> str | None:
    """The attribute type a cast segment names (``Microsoft.Dynamics.CRM.XAttributeMetadata``)."""
    if cast is None:
        return None
    short = short_type(cast)
    if short == "EnumAttributeMetadata":
        # Reported from a real environment: the abstract base type cannot be cast to.
        raise errors.DataverseError(500, "0x8006088a", "Unexpected attribute type")
    if short is None or short not in KNOWN_ATTRIBUTE_TYPES:
        raise errors.segment_not_found(cast)
    return short


# --- tables --------------------------------------------------------------------------------------
def list_entities(request: MetadataCall) -> Outcome:
    options = request.options("EntityMetadata", ENTITY_PROPERTIES, ENTITY_NAVIGATION)
    view = request.view
    items = []
    for table in view.tables():
        item = view.entity(table)
        if options.matches(item):
            items.append(_entity_item(request, table, item, options))
    return request.collection("EntityDefinitions", items)


def get_entity(request: MetadataCall, key: Key) -> Outcome:
    table = find_table(request, key)
    options = request.options("EntityMetadata", ENTITY_PROPERTIES, ENTITY_NAVIGATION)
    item = _entity_item(request, table, request.view.entity(table), options)
    return request.entity("EntityDefinitions", item)


def _entity_item(request: MetadataCall, table: Table, item: dict[str, Any],
                 options: Options) -> dict[str, Any]:
    projected = options.project(item)
    for name, nested in options.expand.items():
        if name == "Attributes":
            inner = parse_options(nested, type_short="AttributeMetadata",
                                  properties=BASE_ATTRIBUTE_PROPERTIES)
            projected[name] = [inner.project(a) for _, a in _attributes(request.view, table, None)
                               if inner.matches(a)]
        else:
            projected[name] = expand_relationships(request, table, name, nested)
    return projected


def create_entity(request: MetadataCall) -> Outcome:
    request.require_customizer("prvCreateEntity")
    api, view = request.api, request.view
    schema = api.schema
    parsed = parse.entity(request.body(), system=system_columns(schema),
                          option_value_prefix=schema.option_value_prefix)
    table = parsed.table
    if table.logical_name in schema.tables:
        raise failures.not_unique("table", table.schema_name)
    if table.entity_set in schema.by_entity_set():
        raise failures.not_unique("entity set", table.entity_set)
    updated = changes.with_table(schema, table)
    if table.has_notes:
        updated = changes.with_notes(updated, table.logical_name)
    key = f"entity/{table.logical_name}"
    for prop, label in parsed.labels.items():
        api.catalog.set_label(key, prop, label)
    primary_key = f"attribute/{table.logical_name}/{table.primary_name}"
    for prop, label in parsed.primary.labels.items():
        api.catalog.set_label(primary_key, prop, label)
    api.catalog.custom_columns.add((table.logical_name, table.primary_name))
    request.record_solution(key)
    request.commit(updated)
    return request.created(f"EntityDefinitions({view.id(key)})")


def update_entity(request: MetadataCall, key: Key) -> Outcome:
    request.require_customizer("prvWriteEntity")
    api = request.api
    table = find_table(request, key)
    component = f"entity/{table.logical_name}"
    defaults = {"DisplayName": table.display_name,
                "DisplayCollectionName": f"{table.display_name}s", "Description": None}
    updated, new_labels = parse.entity_update(
        request.body(), table, merge=request.merge_labels,
        old_labels=lambda prop: api.catalog.label(component, prop, defaults[prop]),
    )
    schema = api.schema
    owner = schema.by_entity_set().get(updated.entity_set)
    if owner is not None and owner.logical_name != table.logical_name:
        raise failures.not_unique("entity set", updated.entity_set)
    schema = changes.with_table(schema, updated)
    if updated.has_notes and not table.has_notes:
        schema = changes.with_notes(schema, table.logical_name)
    for prop, label in new_labels.items():
        api.catalog.set_label(component, prop, label)
    request.record_solution(component)
    request.commit(schema)
    return request.no_content()


# --- attributes ----------------------------------------------------------------------------------
def _attributes(view: View, table: Table,
                cast: str | None) -> list[tuple[Column, dict[str, Any]]]:
    """The table's columns of the ``cast`` type (all without one), each with its metadata."""
    return [(column, view.attribute(table, column)) for column in table.columns.values()
            if cast is None or attribute_type_short(column) == cast]


def _attribute_options(request: MetadataCall, cast: str | None) -> Options:
    if cast is None:
        return request.options("AttributeMetadata", BASE_ATTRIBUTE_PROPERTIES)
    navigation = OPTION_SET_NAVIGATION if cast in OPTION_SET_TYPES else frozenset()
    return request.options(cast, BASE_ATTRIBUTE_PROPERTIES | DERIVED_PROPERTIES.get(
        cast, frozenset()), navigation)


def list_attributes(request: MetadataCall, key: Key, cast_segment: str | None) -> Outcome:
    table = find_table(request, key)
    cast = _cast(cast_segment)
    options = _attribute_options(request, cast)
    view = request.view
    items = [_attribute_item(request, table, column, item, options)
             for column, item in _attributes(view, table, cast) if options.matches(item)]
    context = f"EntityDefinitions({view.id('entity/' + table.logical_name)})/Attributes"
    return request.collection(context + (f"/{cast_segment}" if cast_segment else ""), items)


def get_attribute(request: MetadataCall, key: Key, attribute_key: Key,
                  cast_segment: str | None) -> Outcome:
    table = find_table(request, key)
    column = find_column(request, table, attribute_key)
    cast = _cast(cast_segment)
    if cast is not None and attribute_type_short(column) != cast:
        raise errors.segment_not_found(str(cast_segment))
    options = _attribute_options(request, cast)
    view = request.view
    item = _attribute_item(request, table, column, view.attribute(table, column), options)
    context = (f"EntityDefinitions({view.id('entity/' + table.logical_name)})/Attributes"
               + (f"/{cast_segment}" if cast_segment else ""))
    return request.entity(context, item)


def _attribute_item(request: MetadataCall, table: Table, column: Column, item: dict[str, Any],
                    options: Options) -> dict[str, Any]:
    projected = options.project(item)
    for name, nested in options.expand.items():
        inner = parse_options(nested, type_short="OptionSetMetadata",
                              properties=OPTION_SET_PROPERTIES)
        # Reported from a real environment: GlobalOptionSet of a column with a local option
        # set leads to that local set, like OptionSet does.
        projected[name] = inner.project(request.view.option_set(table, column))
    return projected


def create_attribute(request: MetadataCall, key: Key) -> Outcome:
    request.require_customizer("prvCreateAttribute")
    api, view = request.api, request.view
    table = find_table(request, key)
    schema = api.schema
    parsed = parse.attribute(request.body(), choice_for_id=view.choice_by_id,
                             option_value_prefix=schema.option_value_prefix)
    column = parsed.column
    if parsed.global_choice is not None:
        column = replace(column, options=schema.choices[parsed.global_choice])
    parse.check_default(replace(parsed, column=column))
    if any(existing.schema_name.lower() == column.name for existing in table.columns.values()) \
            or column.name in table.columns or column.name in table.navigation:
        raise failures.duplicate_attribute(column.schema_name, table.logical_name)
    component = f"attribute/{table.logical_name}/{column.name}"
    _store_labels(request, table, column, parsed)
    api.catalog.custom_columns.add((table.logical_name, column.name))
    request.record_solution(component)
    request.commit(changes.with_column(schema, table.logical_name, column))
    return request.created(f"EntityDefinitions({view.id('entity/' + table.logical_name)})"
                           f"/Attributes({view.id(component)})")


def _store_labels(request: MetadataCall, table: Table, column: Column,
                  parsed: parse.ParsedAttribute) -> None:
    catalog = request.api.catalog
    component = f"attribute/{table.logical_name}/{column.name}"
    for prop, label in parsed.labels.items():
        catalog.set_label(component, prop, label)
    option_set = f"optionset/{table.logical_name}/{column.name}"
    for option, label in parsed.option_labels.items():
        value = {"true": "1", "false": "0"}.get(option, option)
        catalog.set_label(f"{option_set}/{value}", "Label", label)


def update_attribute(request: MetadataCall, key: Key, attribute_key: Key) -> Outcome:
    request.require_customizer("prvWriteAttribute")
    api = request.api
    table = find_table(request, key)
    existing = find_column(request, table, attribute_key)
    component = f"attribute/{table.logical_name}/{existing.name}"
    defaults = {"DisplayName": humanized(existing.name), "Description": None}
    schema = api.schema
    parsed = parse.attribute_update(
        request.body(), existing, choice_for_id=request.view.choice_by_id,
        option_value_prefix=schema.option_value_prefix, merge=request.merge_labels,
        old_labels=lambda prop: api.catalog.label(component, prop, defaults[prop]),
    )
    parse.check_default(parsed)
    _store_labels(request, table, parsed.column, parsed)
    request.record_solution(component)
    request.commit(changes.with_column(schema, table.logical_name, parsed.column))
    return request.no_content()


def delete_attribute(request: MetadataCall, key: Key, attribute_key: Key) -> Outcome:
    request.require_customizer("prvDeleteAttribute")
    api = request.api
    table = find_table(request, key)
    column = find_column(request, table, attribute_key)
    platform = column.name in (table.primary_key, table.primary_name) or (
        column.name in SYSTEM_COLUMNS
    )
    if platform or (table.logical_name, column.name) not in api.catalog.custom_columns:
        raise failures.invalid(f"The attribute {column.name} of {table.logical_name} is not a "
                               "custom attribute that can be deleted.")
    api.catalog.forget(f"attribute/{table.logical_name}/{column.name}")
    api.catalog.forget(f"optionset/{table.logical_name}/{column.name}")
    request.commit(changes.without_column(api.schema, table.logical_name, column.name))
    api.catalog.keep_only(api.schema)
    return request.no_content()
