"""Metadata request bodies built from the desired schema (the Web API's documented shapes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioning.model import (
    API_REQUIRED_LEVEL,
    DEFAULT_MAX_LENGTH,
    INT_RANGE,
    LABEL_LANGUAGE,
    Choice,
    Column,
    DesiredSchema,
    Option,
    Table,
)
from provisioning.steps import OptionAction

NAMESPACE = "Microsoft.Dynamics.CRM."
FORMATS = {"email": "Email", "url": "Url", "text": "Text"}
# What Dataverse sets for a lookup made in the maker portal: referential, remove link.
CASCADE = {"Assign": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade",
           "Reparent": "NoCascade", "Share": "NoCascade", "Unshare": "NoCascade"}
DESCRIPTION = "Created by the dotdigital connector's provisioning from its schema file."
# Column kinds ``POST .../Attributes`` creates (lookups come with a relationship).
ATTRIBUTE_TYPES = {
    "string": ("StringAttributeMetadata", "String"),
    "memo": ("MemoAttributeMetadata", "Memo"),
    "int": ("IntegerAttributeMetadata", "Integer"),
    "bigint": ("BigIntAttributeMetadata", "BigInt"),
    "decimal": ("DecimalAttributeMetadata", "Decimal"),
    "float": ("DoubleAttributeMetadata", "Double"),
    "money": ("MoneyAttributeMetadata", "Money"),
    "bool": ("BooleanAttributeMetadata", "Boolean"),
    "datetime": ("DateTimeAttributeMetadata", "DateTime"),
    "dateonly": ("DateTimeAttributeMetadata", "DateTime"),
    "choice": ("PicklistAttributeMetadata", "Picklist"),
}


def label(text: str) -> dict[str, Any]:
    return {
        "@odata.type": NAMESPACE + "Label",
        "LocalizedLabels": [{"@odata.type": NAMESPACE + "LocalizedLabel", "Label": text,
                             "LanguageCode": LABEL_LANGUAGE}],
    }


def choice(value: Choice) -> dict[str, Any]:
    return {
        "@odata.type": NAMESPACE + "OptionSetMetadata",
        "Name": value.name,
        "DisplayName": label(value.display_name),
        "Description": label(DESCRIPTION),
        "IsGlobal": True,
        "OptionSetType": "Picklist",
        "Options": [{"Value": option.value, "Label": label(option.label)}
                    for option in value.options],
    }


def option_action(action: OptionAction, choice_name: str, option: Option, *,
                  solution: str | None) -> dict[str, Any]:
    """The parameters of ``InsertOptionValue``, ``UpdateOptionValue`` or ``DeleteOptionValue``."""
    body: dict[str, Any] = {"OptionSetName": choice_name, "Value": option.value}
    if action == "DeleteOptionValue":
        return body
    body["Label"] = label(option.label)
    if action == "UpdateOptionValue":
        body["MergeLabels"] = True  # other languages' labels stay
    if solution:
        # The solution travels as a parameter of the option actions, not as a header.
        body["SolutionUniqueName"] = solution
    return body


def table(value: Table, primary: Column) -> dict[str, Any]:
    return {
        "@odata.type": NAMESPACE + "EntityMetadata",
        "SchemaName": value.schema_name,
        "EntitySetName": value.entity_set,
        "DisplayName": label(value.display_name),
        "DisplayCollectionName": label(value.display_name + "s"),
        "Description": label(DESCRIPTION),
        # The connector's settings and rows belong to the organization, not to a user.
        "OwnershipType": "OrganizationOwned",
        "IsActivity": False,
        "HasActivities": False,
        "HasNotes": value.has_notes,
        "Attributes": [{**attribute(primary, choice_id=None), "IsPrimaryName": True}],
    }


def attribute(column: Column, *, choice_id: str | None) -> dict[str, Any]:
    """``POST .../Attributes`` body of a column that is not a lookup."""
    type_name, attribute_type = ATTRIBUTE_TYPES[column.kind]
    body: dict[str, Any] = {
        "@odata.type": NAMESPACE + type_name,
        "AttributeType": attribute_type,
        "AttributeTypeName": {"Value": attribute_type + "Type"},
        "SchemaName": column.schema_name,
        "DisplayName": label(column.display_name or column.name),
        "RequiredLevel": {"Value": API_REQUIRED_LEVEL[column.required]},
    }
    if column.kind != "choice":
        # Reported from a real environment: a Description on a choice column bound to a global
        # choice makes the service refuse it ("IsGlobal is not specified").
        body["Description"] = label(DESCRIPTION)
    body.update(_typed(column, choice_id))
    return body


def _typed(column: Column, choice_id: str | None) -> dict[str, Any]:
    kind = column.kind
    if kind == "string":
        fmt = FORMATS.get(column.format or "text", "Text")
        return {"MaxLength": column.max_length or DEFAULT_MAX_LENGTH[kind],
                "FormatName": {"Value": fmt}}
    if kind == "memo":
        return {"MaxLength": column.max_length or DEFAULT_MAX_LENGTH[kind], "Format": "TextArea"}
    if kind == "int":
        return {"MinValue": column.min_value if column.min_value is not None else INT_RANGE[0],
                "MaxValue": column.max_value if column.max_value is not None else INT_RANGE[1],
                "Format": "None"}
    if kind == "bool":
        return {
            "DefaultValue": bool(column.default),
            "OptionSet": {
                "@odata.type": NAMESPACE + "BooleanOptionSetMetadata",
                "TrueOption": {"Value": 1, "Label": label(column.labels.get("true", "Yes"))},
                "FalseOption": {"Value": 0, "Label": label(column.labels.get("false", "No"))},
            },
        }
    if kind == "datetime":
        return {"Format": "DateAndTime", "DateTimeBehavior": {"Value": "UserLocal"}}
    if kind == "dateonly":
        return {"Format": "DateOnly", "DateTimeBehavior": {"Value": "DateOnly"}}
    if kind == "choice":
        # A global choice is bound by its MetadataId: by its Name the service answers 500.
        return {"GlobalOptionSet@odata.bind": f"/GlobalOptionSetDefinitions({choice_id})",
                "DefaultFormValue": column.default if isinstance(column.default, int) else -1}
    return {}


def relationship_name(schema: DesiredSchema, table_name: str, column: Column,
                      target: str) -> str:
    """``ec_emailaccount_syncschedule_emailaccountid``: the publisher's prefix, then the two
    tables and the lookup, so each lookup's relationship has a name of its own."""
    def bare(name: str) -> str:
        return name.removeprefix(schema.prefix + "_")

    return f"{schema.prefix}_{bare(target)}_{bare(table_name)}_{bare(column.name)}"


def lookup(schema: DesiredSchema, table_name: str, column: Column,
           referenced: Table) -> dict[str, Any]:
    """``POST RelationshipDefinitions`` body: a one-to-many relationship and its lookup."""
    target = column.targets[0]
    return {
        "@odata.type": NAMESPACE + "OneToManyRelationshipMetadata",
        "SchemaName": relationship_name(schema, table_name, column, referenced.logical_name),
        "ReferencedEntity": referenced.logical_name,
        "ReferencedAttribute": referenced.primary_key,
        "ReferencingEntity": table_name,
        "ReferencingEntityNavigationPropertyName": target.navigation_property,
        "CascadeConfiguration": CASCADE,
        "Lookup": {
            "@odata.type": NAMESPACE + "LookupAttributeMetadata",
            "AttributeType": "Lookup",
            "AttributeTypeName": {"Value": "LookupType"},
            "SchemaName": column.schema_name,
            "DisplayName": label(column.display_name or column.name),
            "Description": label(DESCRIPTION),
            "RequiredLevel": {"Value": API_REQUIRED_LEVEL[column.required]},
        },
    }


def updated_attribute(definition: Mapping[str, Any], column: Column) -> dict[str, Any]:
    """The full definition read back, with the compared properties set to ``column``'s."""
    body = _put_body(definition)
    body["RequiredLevel"] = {**(definition.get("RequiredLevel") or {}),
                             "Value": API_REQUIRED_LEVEL[column.required]}
    body.update({key: value for key, value in _typed(column, None).items()
                 if key in _COMPARED_PROPERTIES})
    if "FormatName" in body and column.kind == "string":
        body["Format"] = body["FormatName"]["Value"]
    return body


def updated_table(definition: Mapping[str, Any], *, has_notes: bool) -> dict[str, Any]:
    return {**_put_body(definition), "HasNotes": has_notes}


# What ``updated_attribute`` takes from ``_typed``: the properties the plan compares.
_COMPARED_PROPERTIES = frozenset({"MaxLength", "FormatName", "MinValue", "MaxValue",
                                  "DefaultValue", "DefaultFormValue"})


def _put_body(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition read back as a PUT sends it: a metadata PUT replaces the whole definition,
    so every property stays; the response's annotations go, but for the type."""
    return {name: value for name, value in definition.items()
            if not name.startswith("@odata.") or name == "@odata.type"}
