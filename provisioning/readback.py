"""What the metadata API returns, read into the same model as the schema file.

Only what provisioning compares is read: types, lengths, ranges, formats, requirement levels,
defaults, the choice a column uses, state and status options, lookup targets and navigation
properties, and the labels of options. Table and column labels are read but not compared
(administrators may rename things in CRM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provisioning.model import (
    API_REQUIRED_LEVEL,
    LABEL_LANGUAGE,
    Column,
    FoundChoice,
    FoundTable,
    Option,
    Table,
    Target,
)

KINDS = {
    "String": "string", "Memo": "memo", "Integer": "int", "BigInt": "bigint",
    "Decimal": "decimal", "Double": "float", "Money": "money", "Boolean": "bool",
    "DateTime": "datetime", "Picklist": "choice", "State": "state", "Status": "status",
    "Lookup": "lookup", "Customer": "lookup", "Owner": "lookup",
    "Uniqueidentifier": "guid", "EntityName": "entityname",
}
REQUIRED = {api_name: level for level, api_name in API_REQUIRED_LEVEL.items()}


def label_text(label: Any) -> str:
    """The text of a ``Label`` in the base language (any language when that one is missing)."""
    if not isinstance(label, Mapping):
        return ""
    localized = label.get("LocalizedLabels") or []
    for item in localized:
        if isinstance(item, Mapping) and item.get("LanguageCode") == LABEL_LANGUAGE:
            return str(item.get("Label") or "")
    user = label.get("UserLocalizedLabel")
    if isinstance(user, Mapping):
        return str(user.get("Label") or "")
    return str(localized[0].get("Label") or "") if localized else ""


def options(raw: Any) -> tuple[Option, ...]:
    found = []
    for item in raw or []:
        if isinstance(item, Mapping) and isinstance(item.get("Value"), int):
            state = item.get("State")
            found.append(Option(value=item["Value"], label=label_text(item.get("Label")),
                                state=state if isinstance(state, int) else None))
    return tuple(found)


def choice(raw: Mapping[str, Any]) -> FoundChoice:
    return FoundChoice(name=str(raw["Name"]), metadata_id=str(raw["MetadataId"]),
                       options=options(raw.get("Options")))


def column(raw: Mapping[str, Any], *, choice_names: Mapping[str, str | None],
           choice_options: Mapping[str, tuple[Option, ...]],
           navigation: Mapping[str, Sequence[Target]]) -> Column:
    """One attribute; ``choice_names`` maps choice columns to their global choice (None: their
    own), ``choice_options`` gives state, status and local options, ``navigation`` the lookups'
    targets with their navigation properties."""
    name = str(raw["LogicalName"])
    attribute_type = str(raw.get("AttributeType") or "")
    kind = KINDS.get(attribute_type, attribute_type.lower())
    behavior = raw.get("DateTimeBehavior")
    if kind == "datetime" and isinstance(behavior, Mapping) and behavior.get("Value") == "DateOnly":
        kind = "dateonly"
    required_level = raw.get("RequiredLevel")
    required = REQUIRED.get(str(required_level.get("Value")) if isinstance(required_level, Mapping)
                            else "None", "none")
    fmt = None
    if kind == "string":
        format_name = raw.get("FormatName")
        value = format_name.get("Value") if isinstance(format_name, Mapping) else raw.get("Format")
        fmt = str(value).lower() if value else "text"
    default: bool | int | None = None
    if kind == "bool" and isinstance(raw.get("DefaultValue"), bool):
        default = raw["DefaultValue"]
    elif kind == "choice" and isinstance(raw.get("DefaultFormValue"), int) and raw[
            "DefaultFormValue"] != -1:
        default = raw["DefaultFormValue"]
    targets = tuple(navigation.get(name, ()))
    if kind == "lookup" and not targets:
        targets = tuple(Target(table=str(t), navigation_property="")
                        for t in raw.get("Targets") or [])
    return Column(
        name=name, schema_name=str(raw.get("SchemaName") or name), kind=kind,
        display_name=label_text(raw.get("DisplayName")),
        max_length=raw.get("MaxLength") if kind in ("string", "memo") else None,
        min_value=raw.get("MinValue") if kind == "int" else None,
        max_value=raw.get("MaxValue") if kind == "int" else None,
        required=required, format=fmt, default=default,
        choice=choice_names.get(name) if kind == "choice" else None,
        options=choice_options.get(name, ()), targets=targets,
    )


def table(entity: Mapping[str, Any], attributes: Sequence[Mapping[str, Any]], *,
          choice_sets: Mapping[str, Mapping[str, Any]],
          state_sets: Mapping[str, Mapping[str, Any]],
          relationships: Sequence[Mapping[str, Any]]) -> FoundTable:
    """A table from its ``EntityMetadata``, its ``Attributes``, the option sets of its choice,
    state and status columns (by column) and its ``ManyToOneRelationships``."""
    choice_names: dict[str, str | None] = {}
    choice_options: dict[str, tuple[Option, ...]] = {}
    for name, option_set in choice_sets.items():
        is_global = option_set.get("IsGlobal") is True
        choice_names[name] = str(option_set.get("Name")) if is_global else None
        if not is_global:
            choice_options[name] = options(option_set.get("Options"))
    for name, option_set in state_sets.items():
        choice_options[name] = options(option_set.get("Options"))
    navigation: dict[str, list[Target]] = {}
    for relationship in relationships:
        navigation.setdefault(str(relationship.get("ReferencingAttribute")), []).append(Target(
            table=str(relationship.get("ReferencedEntity")),
            navigation_property=str(relationship.get("ReferencingEntityNavigationPropertyName")
                                    or "")))
    columns = tuple(column(raw, choice_names=choice_names, choice_options=choice_options,
                           navigation=navigation) for raw in attributes)
    found = Table(
        logical_name=str(entity["LogicalName"]), schema_name=str(entity.get("SchemaName") or ""),
        entity_set=str(entity.get("EntitySetName") or ""),
        display_name=label_text(entity.get("DisplayName")), standard=not entity.get(
            "IsCustomEntity", False),
        requires_app=None, primary_key=str(entity.get("PrimaryIdAttribute") or ""),
        primary_name=str(entity.get("PrimaryNameAttribute") or ""),
        has_notes=bool(entity.get("HasNotes")), columns=columns,
    )
    return FoundTable(
        table=found, definition=dict(entity),
        attribute_definitions={str(raw["LogicalName"]): dict(raw) for raw in attributes},
    )
