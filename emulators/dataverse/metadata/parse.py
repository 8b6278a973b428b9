"""Request bodies of the metadata API, checked and turned into schema objects.

Each function raises the service's 400 for the first problem, so a refused request changes
nothing: the caller applies the result only when the whole body has been read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from emulators.dataverse.metadata import failures, labels
from emulators.dataverse.metadata.catalog import CASCADE_VALUES, DEFAULT_CASCADE
from emulators.dataverse.metadata.names import (
    ATTRIBUTE_TYPES,
    BIGINT_RANGE,
    CREATABLE_TYPES,
    DEFAULT_MEMO_LENGTH,
    DEFAULT_STRING_LENGTH,
    INT_RANGE,
    KNOWN_ATTRIBUTE_TYPES,
    MEMO_MAX_LENGTH,
    REQUIRED_FROM_METADATA,
    STRING_FORMAT_FROM_METADATA,
    STRING_MAX_LENGTH,
    short_type,
)
from emulators.dataverse.metadata.render import (
    BASE_ATTRIBUTE_PROPERTIES,
    DERIVED_PROPERTIES,
    ENTITY_PROPERTIES,
    OPTION_SET_NAVIGATION,
    OPTION_SET_PROPERTIES,
    OPTION_SET_TYPES,
    RELATIONSHIP_PROPERTIES,
    attribute_type_short,
)
from emulators.dataverse.schema import ChoiceOption, Column, LookupTarget, Schema, Table
from emulators.dataverse.security import OWNER_COLUMN

# A publisher prefix (2 to 8 letters or digits, starting with a letter), an underscore, a name.
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,7}_[A-Za-z0-9_]+$")
_ENTITY_SET = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_GUID_BIND = re.compile(r"^/?GlobalOptionSetDefinitions\(([0-9a-fA-F-]{36})\)$")
_NAME_BIND = re.compile(r"^/?GlobalOptionSetDefinitions\((.*)\)$")
# OptionSet properties a body may carry besides the ones metadata returns.
_OPTION_SET_INPUT = OPTION_SET_PROPERTIES | {"@odata.type"}
Labels = dict[str, dict[int, str]]  # property -> label


@dataclass(frozen=True)
class ParsedAttribute:
    column: Column
    labels: Labels  # DisplayName, Description
    # Local options' labels by value (picklists) or "true"/"false" (booleans).
    option_labels: dict[str, dict[int, str]] = field(default_factory=dict)
    global_choice: str | None = None  # the MetadataId bound with GlobalOptionSet@odata.bind


@dataclass(frozen=True)
class ParsedTable:
    table: Table
    labels: Labels
    primary: ParsedAttribute


@dataclass(frozen=True)
class ParsedOptionSet:
    name: str
    options: tuple[ChoiceOption, ...]
    labels: Labels
    option_labels: dict[int, dict[int, str]]


@dataclass(frozen=True)
class ParsedRelationship:
    schema_name: str
    referenced: str
    referencing: str
    lookup: ParsedAttribute
    referenced_navigation: str
    cascade: dict[str, str]


def body_object(body: Any, type_short: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise failures.bad_value(type_short, "a JSON object")
    return body


def check_type(body: Mapping[str, Any], expected: str) -> None:
    """``@odata.type`` must name ``expected`` when present."""
    declared = body.get("@odata.type")
    if declared is None:
        return
    short = short_type(declared)
    if short is None:
        raise failures.unresolved_type(str(declared))
    if short != expected:
        raise failures.invalid(f"A {short} was sent where a {expected} is expected.")


def check_properties(body: Mapping[str, Any], allowed: frozenset[str], type_short: str) -> None:
    for name in body:
        if "@" in name:
            continue  # instance and property annotations, binds
        if name not in allowed:
            raise failures.unknown_property(name, type_short)


def schema_name(body: Mapping[str, Any], type_short: str) -> str:
    value = body.get("SchemaName")
    if not isinstance(value, str) or not value:
        raise failures.missing("SchemaName", type_short)
    if not _SCHEMA_NAME.match(value) or value.lower().startswith("mscrm"):
        raise failures.invalid(
            f"The schema name {value} must start with a customization prefix (2 to 8 letters or "
            "digits, not mscrm) and an underscore."
        )
    logical = body.get("LogicalName")
    if logical is not None and logical != value.lower():
        raise failures.invalid(f"The LogicalName {logical} must be the SchemaName in lower case.")
    return value


def label_of(body: Mapping[str, Any], name: str, *,
             required_for: str | None = None) -> dict[int, str]:
    value = labels.parse(body.get(name), name)
    if required_for is not None and not value:
        raise failures.missing(name, required_for)
    return value


def required_level(body: Mapping[str, Any]) -> str:
    raw = body.get("RequiredLevel")
    if raw is None:
        return "none"
    value = raw.get("Value") if isinstance(raw, Mapping) else None
    if value == "SystemRequired":
        raise failures.invalid("A custom column cannot be SystemRequired.")
    if value not in REQUIRED_FROM_METADATA:
        raise failures.bad_value("RequiredLevel", "None, Recommended or ApplicationRequired")
    return REQUIRED_FROM_METADATA[value]


# --- attributes ----------------------------------------------------------------------------------
def attribute(
    body: Any, *, choice_for_id: Callable[[str], str | None], option_value_prefix: int,
) -> ParsedAttribute:
    """A column to create (``POST .../Attributes``); its table checks the name is free."""
    body = body_object(body, "AttributeMetadata")
    short = short_type(body.get("@odata.type"))
    if short is None:
        declared = body.get("@odata.type")
        if declared is None:
            raise failures.invalid("The @odata.type of the attribute is required to create it.")
        raise failures.unresolved_type(str(declared))
    if short == "LookupAttributeMetadata":
        raise failures.invalid(
            "A lookup column is created with its relationship: POST RelationshipDefinitions with a "
            "OneToManyRelationshipMetadata whose Lookup is the column."
        )
    if short not in CREATABLE_TYPES:
        if short in KNOWN_ATTRIBUTE_TYPES:
            raise failures.not_emulated(f"Creating a {short}")
        raise failures.unresolved_type(f"Microsoft.Dynamics.CRM.{short}")
    check_properties(body, _allowed(short), short)
    name = schema_name(body, short)
    declared_type = body.get("AttributeType")
    kind = CREATABLE_TYPES[short]
    column_labels = {"DisplayName": label_of(body, "DisplayName", required_for=short),
                     "Description": label_of(body, "Description")}
    column = Column(name=name.lower(), type=kind, schema_name=name,
                    required=required_level(body))
    parsed = _typed(body, short, column, column_labels, choice_for_id, option_value_prefix,
                    existing=None)
    if declared_type is not None and not _type_matches(declared_type, short):
        raise failures.invalid(f"AttributeType {declared_type} does not match {short}.")
    return parsed


def attribute_update(
    body: Any, existing: Column, *, choice_for_id: Callable[[str], str | None],
    option_value_prefix: int, old_labels: Callable[[str], dict[int, str]], merge: bool,
) -> ParsedAttribute:
    """The full new definition of ``existing`` (``PUT .../Attributes(...)``).

    Writable properties the body leaves out take their defaults, as a metadata PUT replaces the
    whole definition; labels follow ``MSCRM.MergeLabels``."""
    body = body_object(body, "AttributeMetadata")
    current = attribute_type_short(existing)
    short = short_type(body.get("@odata.type"))
    if short is None:
        raise failures.invalid("The @odata.type of the attribute is required to update it.")
    if short != current:
        raise failures.invalid(
            f"The type of attribute {existing.name} cannot be changed from {current} to {short}."
        )
    check_properties(body, _allowed(short), short)
    if body.get("SchemaName") not in (None, existing.schema_name):
        raise failures.invalid(f"The SchemaName of attribute {existing.name} cannot be changed.")
    if body.get("LogicalName") not in (None, existing.name):
        raise failures.invalid(f"The LogicalName of attribute {existing.name} cannot be changed.")
    new_labels = {prop: labels.merged(old_labels(prop), label_of(body, prop), merge=merge)
                  for prop in ("DisplayName", "Description")}
    system = existing.type in ("guid", "state", "status", "entityname") or existing.read_only
    required = existing.required if system else required_level(body)
    column = replace(existing, required=required)
    if existing.type in CREATABLE_TYPES.values() or existing.type == "dateonly":
        parsed = _typed(body, short, column, new_labels, choice_for_id, option_value_prefix,
                        existing=existing)
        if existing.type in ("datetime", "dateonly") and parsed.column.type != existing.type:
            raise failures.invalid(f"The DateTimeBehavior of {existing.name} cannot be changed.")
        return parsed
    return ParsedAttribute(column=column, labels=new_labels)


def _allowed(short: str) -> frozenset[str]:
    extra = OPTION_SET_NAVIGATION if short in OPTION_SET_TYPES else frozenset()
    return BASE_ATTRIBUTE_PROPERTIES | DERIVED_PROPERTIES.get(short, frozenset()) | extra


def _type_matches(declared: Any, short: str) -> bool:
    return any(declared == attribute_type and short == metadata_type
               for attribute_type, metadata_type in ATTRIBUTE_TYPES.values())


def _typed(
    body: Mapping[str, Any], short: str, column: Column, column_labels: Labels,
    choice_for_id: Callable[[str], str | None], option_value_prefix: int,
    existing: Column | None,
) -> ParsedAttribute:
    if short in ("StringAttributeMetadata", "MemoAttributeMetadata"):
        memo = short == "MemoAttributeMetadata"
        limits = MEMO_MAX_LENGTH if memo else STRING_MAX_LENGTH
        length = _integer(body, "MaxLength", DEFAULT_MEMO_LENGTH if memo else
                          DEFAULT_STRING_LENGTH, limits)
        form = None
        if not memo:
            form = _string_format(body)
        return ParsedAttribute(
            column=replace(column, max_length=length, format=form,
                           # Email columns are looked up by value: the emulator indexes them.
                           indexed=(column.indexed or form == "email")),
            labels=column_labels,
        )
    if short == "IntegerAttributeMetadata":
        low = _integer(body, "MinValue", INT_RANGE[0], INT_RANGE)
        high = _integer(body, "MaxValue", INT_RANGE[1], INT_RANGE)
        if low > high:
            raise failures.invalid("MinValue must not be greater than MaxValue.")
        return ParsedAttribute(column=replace(column, min_value=low, max_value=high),
                               labels=column_labels)
    if short == "BigIntAttributeMetadata":
        _integer(body, "MinValue", BIGINT_RANGE[0], BIGINT_RANGE)
        _integer(body, "MaxValue", BIGINT_RANGE[1], BIGINT_RANGE)
        return ParsedAttribute(column=column, labels=column_labels)
    if short in ("DecimalAttributeMetadata", "DoubleAttributeMetadata",
                 "MoneyAttributeMetadata"):
        return ParsedAttribute(column=column, labels=column_labels)
    if short == "BooleanAttributeMetadata":
        return _boolean(body, column, column_labels, existing)
    if short == "DateTimeAttributeMetadata":
        return ParsedAttribute(column=replace(column, type=_date_kind(body)),
                               labels=column_labels)
    return _picklist(body, column, column_labels, choice_for_id, option_value_prefix, existing)


def _integer(body: Mapping[str, Any], name: str, default: int, limits: tuple[int, int]) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not (
            limits[0] <= value <= limits[1]):
        raise failures.invalid(f"{name} must be a whole number from {limits[0]} to {limits[1]}.")
    return int(value)


def _string_format(body: Mapping[str, Any]) -> str:
    name = body.get("FormatName")
    value = name.get("Value") if isinstance(name, Mapping) else None
    if value is None:
        value = body.get("Format")
    if value is None:
        return "text"
    if value not in STRING_FORMAT_FROM_METADATA:
        raise failures.invalid(f"{value} is not a format of a String column.")
    return STRING_FORMAT_FROM_METADATA[value]


def _date_kind(body: Mapping[str, Any]) -> str:
    behavior = body.get("DateTimeBehavior")
    value = behavior.get("Value") if isinstance(behavior, Mapping) else "UserLocal"
    form = body.get("Format") or "DateAndTime"
    if value not in ("UserLocal", "DateOnly", "TimeZoneIndependent"):
        raise failures.invalid(f"{value} is not a DateTimeBehavior.")
    if form not in ("DateOnly", "DateAndTime"):
        raise failures.invalid(f"{form} is not a format of a DateTime column.")
    if value == "DateOnly" and form != "DateOnly":
        raise failures.invalid("A DateOnly behavior needs the DateOnly format.")
    return "dateonly" if value == "DateOnly" else "datetime"


def _boolean(body: Mapping[str, Any], column: Column, column_labels: Labels,
             existing: Column | None) -> ParsedAttribute:
    default = body.get("DefaultValue", False)
    if not isinstance(default, bool):
        raise failures.invalid("DefaultValue of a Boolean column is true or false.")
    option_set = body.get("OptionSet")
    texts = dict(existing.labels) if existing is not None else {"true": "Yes", "false": "No"}
    option_labels: dict[str, dict[int, str]] = {}
    if isinstance(option_set, Mapping):
        for key, prop in (("true", "TrueOption"), ("false", "FalseOption")):
            option = option_set.get(prop)
            if isinstance(option, Mapping):
                parsed = labels.parse(option.get("Label"), f"OptionSet.{prop}.Label")
                if parsed:
                    option_labels[key] = parsed
                    texts[key] = labels.text(parsed) or texts[key]
    elif option_set is not None:
        raise failures.bad_value("OptionSet", "a BooleanOptionSetMetadata")
    return ParsedAttribute(column=replace(column, default=default, labels=texts),
                           labels=column_labels, option_labels=option_labels)


def _picklist(
    body: Mapping[str, Any], column: Column, column_labels: Labels,
    choice_for_id: Callable[[str], str | None], option_value_prefix: int,
    existing: Column | None,
) -> ParsedAttribute:
    bind = body.get("GlobalOptionSet@odata.bind")
    inline = body.get("OptionSet")
    choice: str | None = existing.choice if existing is not None else None
    options = existing.options if existing is not None else ()
    option_labels: dict[str, dict[int, str]] = {}
    if existing is None:
        if isinstance(inline, Mapping) and inline.get("IsGlobal") is True:
            raise failures.global_option_set_inline()
        if isinstance(inline, Mapping):
            # Reported from a real environment: with both, the binding is silently dropped and
            # the column gets a local option set.
            check_properties(inline, _OPTION_SET_INPUT, "OptionSetMetadata")
            options, by_value = _options(inline.get("Options"), option_value_prefix)
            option_labels = {str(value): label for value, label in by_value.items()}
        elif isinstance(bind, str):
            found = _GUID_BIND.match(bind)
            if found is None:
                if _NAME_BIND.match(bind):
                    raise failures.binding_not_a_guid()
                raise failures.bad_value("GlobalOptionSet@odata.bind",
                                         "/GlobalOptionSetDefinitions(<MetadataId>)")
            choice = choice_for_id(found.group(1).lower())
            if choice is None:
                raise failures.option_set_not_found(found.group(1))
        else:
            raise failures.invalid("A Picklist column needs an OptionSet or a GlobalOptionSet "
                                   "binding.")
    elif bind is not None or (isinstance(inline, Mapping) and "Options" in inline):
        bound = _GUID_BIND.match(bind) if isinstance(bind, str) else None
        if bound is not None and choice_for_id(bound.group(1).lower()) != existing.choice:
            raise failures.invalid(f"The option set of {existing.name} cannot be changed.")
    default = body.get("DefaultFormValue")
    if default in (None, -1):
        default = None
    elif isinstance(default, bool) or not isinstance(default, int):
        raise failures.invalid("DefaultFormValue is a whole number.")
    return ParsedAttribute(column=replace(column, choice=choice, options=options, default=default),
                           labels=column_labels, option_labels=option_labels,
                           global_choice=choice)


def check_default(parsed: ParsedAttribute) -> None:
    """A choice column's default must be one of its options (known once a binding resolved)."""
    column = parsed.column
    if column.type == "choice" and column.default is not None and (
            column.default not in column.option_values):
        raise failures.invalid(f"DefaultFormValue {column.default} is not an option of "
                               f"{column.name}.")


def _options(raw: Any, option_value_prefix: int) -> tuple[tuple[ChoiceOption, ...], dict[
        int, dict[int, str]]]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise failures.bad_value("Options", "a list of OptionMetadata")
    taken = {item.get("Value") for item in raw if isinstance(item, Mapping)}
    next_value = option_value_prefix * 10_000
    options: list[ChoiceOption] = []
    by_value: dict[int, dict[int, str]] = {}
    for index, item in enumerate(raw):
        where = f"Options[{index}]"
        if not isinstance(item, Mapping):
            raise failures.bad_value(where, "an OptionMetadata")
        value = item.get("Value")
        if value is None:
            # Dataverse numbers options it is given without a value from the publisher's prefix.
            while next_value in taken:
                next_value += 1
            value = next_value
            taken.add(value)
        if isinstance(value, bool) or not isinstance(value, int) or not (
                INT_RANGE[0] <= value <= INT_RANGE[1]):
            raise failures.bad_value(f"{where}.Value", "a whole number")
        if value in by_value:
            raise failures.invalid(f"The option value {value} is given twice.")
        label = labels.parse(item.get("Label"), f"{where}.Label")
        if not label:
            raise failures.missing(f"{where}.Label", "OptionMetadata")
        by_value[value] = label
        options.append(ChoiceOption(value=value, label=labels.text(label) or str(value)))
    return tuple(options), by_value


# --- tables --------------------------------------------------------------------------------------
def entity(body: Any, *, system: tuple[Column, ...], option_value_prefix: int) -> ParsedTable:
    """A table to create (``POST EntityDefinitions``) with its primary name column."""
    body = body_object(body, "EntityMetadata")
    check_type(body, "EntityMetadata")
    check_properties(body, ENTITY_PROPERTIES | {"Attributes"}, "EntityMetadata")
    name = schema_name(body, "EntityMetadata")
    logical = name.lower()
    table_labels = {prop: label_of(body, prop, required_for="EntityMetadata")
                    for prop in ("DisplayName", "DisplayCollectionName")}
    table_labels["Description"] = label_of(body, "Description")
    for prop in ("HasNotes", "HasActivities", "IsActivity"):
        if not isinstance(body.get(prop), bool):
            raise failures.missing(prop, "EntityMetadata")
    if body["IsActivity"] or body["HasActivities"]:
        raise failures.not_emulated("Activity tables and activities on a table")
    ownership = body.get("OwnershipType")
    if ownership not in ("UserOwned", "OrganizationOwned"):
        raise failures.missing("OwnershipType", "EntityMetadata")
    entity_set = body.get("EntitySetName") or plural(logical)
    if not isinstance(entity_set, str) or not _ENTITY_SET.match(entity_set):
        raise failures.invalid(f"{entity_set!r} is not a valid EntitySetName.")
    attributes = body.get("Attributes")
    primaries = [item for item in attributes or [] if isinstance(item, Mapping)
                 and item.get("IsPrimaryName") is True]
    if not isinstance(attributes, list) or len(primaries) != 1:
        raise failures.invalid("The Attributes of a new table must hold exactly one primary name "
                               "column (a StringAttributeMetadata with IsPrimaryName true).")
    if len(attributes) != 1:
        raise failures.invalid("Create the other columns of a table with POST "
                               "EntityDefinitions(...)/Attributes once the table exists.")
    if short_type(primaries[0].get("@odata.type")) != "StringAttributeMetadata":
        raise failures.invalid("The primary name column must be a StringAttributeMetadata.")
    primary = attribute(primaries[0], choice_for_id=lambda _: None,
                        option_value_prefix=option_value_prefix)
    columns = _platform_columns(logical, name, ownership == "UserOwned", system)
    if primary.column.name in columns:
        raise failures.duplicate_attribute(primary.column.schema_name, logical)
    columns[primary.column.name] = primary.column
    table = Table(
        logical_name=logical, schema_name=name, entity_set=entity_set,
        display_name=labels.text(table_labels["DisplayName"]) or name,
        primary_key=f"{logical}id", primary_name=primary.column.name, standard=False,
        has_notes=bool(body["HasNotes"]), requires_app=None, columns=columns, navigation={},
    )
    return ParsedTable(table=table, labels=table_labels, primary=primary)


def _platform_columns(logical: str, name: str, user_owned: bool,
                      system: tuple[Column, ...]) -> dict[str, Column]:
    """What Dataverse adds to every new table: its key, state and status, timestamps, owner."""
    columns = {
        f"{logical}id": Column(name=f"{logical}id", type="guid", schema_name=f"{name}Id"),
        "statecode": Column(name="statecode", type="state", schema_name="statecode",
                            options=(ChoiceOption(0, "Active"), ChoiceOption(1, "Inactive"))),
        "statuscode": Column(name="statuscode", type="status", schema_name="statuscode",
                             options=(ChoiceOption(1, "Active", 0),
                                      ChoiceOption(2, "Inactive", 1))),
    }
    for column in system:
        columns[column.name] = column
    if user_owned:
        columns[OWNER_COLUMN] = Column(name=OWNER_COLUMN, type="lookup", schema_name="OwnerId",
                                       read_only=True)
    return columns


def entity_update(body: Any, table: Table, *, old_labels: Callable[[str], dict[int, str]],
                  merge: bool) -> tuple[Table, Labels]:
    """The new definition of ``table`` (``PUT EntityDefinitions(...)``): labels, Notes and the
    entity set name; omitted writable properties take their defaults."""
    body = body_object(body, "EntityMetadata")
    check_type(body, "EntityMetadata")
    check_properties(body, ENTITY_PROPERTIES | {"Attributes"}, "EntityMetadata")
    for prop, current in (("SchemaName", table.schema_name),
                          ("LogicalName", table.logical_name),
                          ("PrimaryIdAttribute", table.primary_key),
                          ("PrimaryNameAttribute", table.primary_name)):
        if body.get(prop) not in (None, current):
            raise failures.invalid(f"The {prop} of table {table.logical_name} cannot be changed.")
    has_notes = body.get("HasNotes", False)
    if not isinstance(has_notes, bool):
        raise failures.bad_value("HasNotes", "true or false")
    if table.has_notes and not has_notes:
        raise failures.invalid(f"Notes cannot be turned off on table {table.logical_name} once "
                               "they are on.")
    entity_set = body.get("EntitySetName") or plural(table.logical_name)
    if not isinstance(entity_set, str) or not _ENTITY_SET.match(entity_set):
        raise failures.invalid(f"{entity_set!r} is not a valid EntitySetName.")
    new_labels = {prop: labels.merged(old_labels(prop), label_of(body, prop), merge=merge)
                  for prop in ("DisplayName", "DisplayCollectionName", "Description")}
    updated = replace(table, entity_set=entity_set, has_notes=has_notes or table.has_notes,
                      display_name=labels.text(new_labels["DisplayName"]) or table.display_name)
    return updated, new_labels


def plural(logical: str) -> str:
    """The entity set name Dataverse gives a table created without one."""
    if logical.endswith("y") and len(logical) > 1 and logical[-2] not in "aeiou":
        return logical[:-1] + "ies"
    if logical.endswith(("s", "x", "z", "ch", "sh")):
        return logical + "es"
    return logical + "s"


# --- global option sets --------------------------------------------------------------------------
def option_set(body: Any, option_value_prefix: int) -> ParsedOptionSet:
    body = body_object(body, "OptionSetMetadata")
    check_type(body, "OptionSetMetadata")
    check_properties(body, _OPTION_SET_INPUT, "OptionSetMetadata")
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise failures.missing("Name", "OptionSetMetadata")
    if not _SCHEMA_NAME.match(name):
        raise failures.invalid(f"The name {name} must start with a customization prefix and an "
                               "underscore.")
    if body.get("IsGlobal") is not True:
        raise failures.invalid("An option set created on GlobalOptionSetDefinitions must have "
                               "IsGlobal true.")
    if body.get("OptionSetType", "Picklist") != "Picklist":
        raise failures.not_emulated(f"Global option sets of type {body.get('OptionSetType')}")
    set_labels = {"DisplayName": label_of(body, "DisplayName", required_for="OptionSetMetadata"),
                  "Description": label_of(body, "Description")}
    options, by_value = _options(body.get("Options"), option_value_prefix)
    # Dataverse keeps option set names in lower case.
    return ParsedOptionSet(name=name.lower(), options=options, labels=set_labels,
                           option_labels=by_value)


# --- relationships -------------------------------------------------------------------------------
def relationship(body: Any, schema: Schema, *, hidden: frozenset[str]) -> ParsedRelationship:
    body = body_object(body, "OneToManyRelationshipMetadata")
    short = short_type(body.get("@odata.type"))
    if short == "ManyToManyRelationshipMetadata":
        raise failures.not_emulated("Many-to-many relationships")
    if short != "OneToManyRelationshipMetadata":
        raise failures.invalid("The @odata.type of a relationship to create must be "
                               "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata.")
    check_properties(body, RELATIONSHIP_PROPERTIES | {"Lookup"}, short)
    name = schema_name(body, short)
    tables = {key: value for key, value in schema.tables.items() if key not in hidden}
    referenced_name, referencing_name = body.get("ReferencedEntity"), body.get("ReferencingEntity")
    for prop, value in (("ReferencedEntity", referenced_name),
                        ("ReferencingEntity", referencing_name)):
        if not isinstance(value, str):
            raise failures.missing(prop, short)
        if value not in tables:
            raise failures.entity_not_found(value)
    assert isinstance(referenced_name, str) and isinstance(referencing_name, str)
    referenced, referencing = tables[referenced_name], tables[referencing_name]
    if body.get("ReferencedAttribute") not in (None, referenced.primary_key):
        raise failures.invalid(f"ReferencedAttribute must be {referenced.primary_key}, the key "
                               f"of {referenced_name}.")
    lookup_body = body_object(body.get("Lookup"), "LookupAttributeMetadata")
    if short_type(lookup_body.get("@odata.type")) not in (None, "LookupAttributeMetadata"):
        raise failures.invalid("The Lookup of a relationship is a LookupAttributeMetadata.")
    check_properties(lookup_body, _allowed("LookupAttributeMetadata"), "LookupAttributeMetadata")
    lookup_name = schema_name(lookup_body, "LookupAttributeMetadata")
    navigation = body.get("ReferencingEntityNavigationPropertyName") or lookup_name
    if not isinstance(navigation, str) or not _ENTITY_SET.match(navigation):
        raise failures.invalid(f"{navigation!r} is not a valid navigation property name.")
    if navigation in referencing.navigation or navigation in referencing.columns:
        raise failures.invalid(f"The navigation property {navigation} already exists on "
                               f"{referencing_name}.")
    column = Column(
        name=lookup_name.lower(), type="lookup", schema_name=lookup_name,
        required=required_level(lookup_body),
        targets=(LookupTarget(table=referenced_name, navigation_property=navigation),),
    )
    lookup = ParsedAttribute(
        column=column,
        labels={"DisplayName": label_of(lookup_body, "DisplayName",
                                        required_for="LookupAttributeMetadata"),
                "Description": label_of(lookup_body, "Description")},
    )
    referenced_navigation = body.get("ReferencedEntityNavigationPropertyName") or name
    cascade = dict(DEFAULT_CASCADE)
    raw_cascade = body.get("CascadeConfiguration")
    if raw_cascade is not None:
        if not isinstance(raw_cascade, Mapping):
            raise failures.bad_value("CascadeConfiguration", "a CascadeConfiguration")
        for action, value in raw_cascade.items():
            if action not in DEFAULT_CASCADE or value not in CASCADE_VALUES:
                raise failures.bad_value(f"CascadeConfiguration.{action}", "a cascade type")
            cascade[action] = value
    return ParsedRelationship(
        schema_name=name, referenced=referenced_name, referencing=referencing_name,
        lookup=lookup, referenced_navigation=str(referenced_navigation), cascade=cascade,
    )
