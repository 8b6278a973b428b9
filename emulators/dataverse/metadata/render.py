"""Metadata as the Web API returns it: ``EntityMetadata``, the ``AttributeMetadata`` types,
``OptionSetMetadata`` and ``OneToManyRelationshipMetadata``, from the schema and the catalog.

Every component has a ``MetadataId`` derived from the environment and its name, so it stays the
same across requests, restarts and a re-creation after a reset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulators.dataverse.metadata import labels
from emulators.dataverse.metadata.catalog import DEFAULT_CASCADE, Catalog
from emulators.dataverse.metadata.names import (
    ATTRIBUTE_TYPES,
    BIGINT_RANGE,
    INT_RANGE,
    REQUIRED_LEVELS,
    STRING_FORMATS,
    type_name,
)
from emulators.dataverse.schema import Column, Schema, Table
from emulators.dataverse.security import OBJECT_TYPE_CODES, OWNER_COLUMN

SYSTEM_COLUMNS = frozenset({"createdon", "modifiedon", "versionnumber", "statecode",
                            "statuscode"})
# Properties of the base AttributeMetadata type (what a $select on ``.../Attributes`` may name).
BASE_ATTRIBUTE_PROPERTIES = frozenset({
    "MetadataId", "LogicalName", "SchemaName", "EntityLogicalName", "AttributeType",
    "AttributeTypeName", "IsCustomAttribute", "IsPrimaryId", "IsPrimaryName", "IsValidForCreate",
    "IsValidForUpdate", "IsValidForRead", "IsManaged", "IsLogical", "AttributeOf",
    "RequiredLevel", "DisplayName", "Description", "IntroducedVersion", "HasChanged",
    "ColumnNumber", "IsAuditEnabled", "IsSecured", "IsSearchable", "IsValidForAdvancedFind",
    "IsCustomizable", "IsRenameable", "CanBeSecuredForCreate", "CanBeSecuredForRead",
    "CanBeSecuredForUpdate", "ExternalName", "SourceType", "IsRequiredForForm",
})
# Properties each derived type adds, and its navigation properties.
DERIVED_PROPERTIES: dict[str, frozenset[str]] = {
    "StringAttributeMetadata": frozenset({"MaxLength", "DatabaseLength", "Format", "FormatName",
                                          "ImeMode", "YomiOf", "IsLocalizable"}),
    "MemoAttributeMetadata": frozenset({"MaxLength", "DatabaseLength", "Format", "FormatName",
                                        "ImeMode", "IsLocalizable"}),
    "IntegerAttributeMetadata": frozenset({"MinValue", "MaxValue", "Format"}),
    "BigIntAttributeMetadata": frozenset({"MinValue", "MaxValue"}),
    "DecimalAttributeMetadata": frozenset({"MinValue", "MaxValue", "Precision", "ImeMode"}),
    "DoubleAttributeMetadata": frozenset({"MinValue", "MaxValue", "Precision", "ImeMode"}),
    "MoneyAttributeMetadata": frozenset({"MinValue", "MaxValue", "Precision", "PrecisionSource",
                                         "ImeMode"}),
    "BooleanAttributeMetadata": frozenset({"DefaultValue"}),
    "DateTimeAttributeMetadata": frozenset({"Format", "DateTimeBehavior", "ImeMode",
                                            "CanChangeDateTimeBehavior"}),
    "PicklistAttributeMetadata": frozenset({"DefaultFormValue"}),
    "StateAttributeMetadata": frozenset({"DefaultFormValue"}),
    "StatusAttributeMetadata": frozenset({"DefaultFormValue"}),
    "LookupAttributeMetadata": frozenset({"Targets", "Format"}),
    "UniqueIdentifierAttributeMetadata": frozenset(),
    "EntityNameAttributeMetadata": frozenset(),
}
# Attribute types with an option set, and the navigation properties that lead to it.
OPTION_SET_TYPES = frozenset({"PicklistAttributeMetadata", "BooleanAttributeMetadata",
                              "StateAttributeMetadata", "StatusAttributeMetadata"})
OPTION_SET_NAVIGATION = frozenset({"OptionSet", "GlobalOptionSet"})
ENTITY_PROPERTIES = frozenset({
    "MetadataId", "LogicalName", "SchemaName", "EntitySetName", "LogicalCollectionName",
    "CollectionSchemaName", "PrimaryIdAttribute", "PrimaryNameAttribute", "ObjectTypeCode",
    "OwnershipType", "IsCustomEntity", "IsManaged", "IsActivity", "HasActivities", "HasNotes",
    "IsValidForAdvancedFind", "IsIntersect", "TableType", "IntroducedVersion", "DisplayName",
    "DisplayCollectionName", "Description", "HasChanged", "IsCustomizable", "IsAuditEnabled",
    "ChangeTrackingEnabled", "IsAvailableOffline", "IsBusinessProcessEnabled",
    "IsConnectionsEnabled", "IsDocumentManagementEnabled", "IsDuplicateDetectionEnabled",
    "IsMailMergeEnabled", "IsQuickCreateEnabled", "IsRenameable", "IsValidForQueue",
    "IsVisibleInMobile", "EntityColor", "IconVectorName", "IsOptimisticConcurrencyEnabled",
})
ENTITY_NAVIGATION = frozenset({"Attributes", "ManyToOneRelationships", "OneToManyRelationships",
                               "ManyToManyRelationships", "Keys"})
OPTION_SET_PROPERTIES = frozenset({
    "MetadataId", "Name", "IsGlobal", "OptionSetType", "IsCustomOptionSet", "IsManaged",
    "DisplayName", "Description", "ExternalTypeName", "IntroducedVersion", "HasChanged",
    "IsCustomizable", "Options", "TrueOption", "FalseOption", "ParentOptionSetName",
})
RELATIONSHIP_PROPERTIES = frozenset({
    "MetadataId", "SchemaName", "RelationshipType", "ReferencedEntity", "ReferencedAttribute",
    "ReferencingEntity", "ReferencingAttribute", "ReferencedEntityNavigationPropertyName",
    "ReferencingEntityNavigationPropertyName", "IsCustomRelationship", "IsManaged",
    "IsHierarchical", "IsValidForAdvancedFind", "SecurityTypes", "IntroducedVersion",
    "CascadeConfiguration", "AssociatedMenuConfiguration", "HasChanged", "IsCustomizable",
    "RelationshipBehavior",
})


@dataclass(frozen=True)
class Relationship:
    """One one-to-many relationship: a lookup column and one of its target tables."""

    schema_name: str
    referenced: str
    referencing: str
    column: str
    navigation: str  # ReferencingEntityNavigationPropertyName
    referenced_navigation: str
    cascade: dict[str, str]
    custom: bool


def attribute_type_short(column: Column) -> str:
    return ATTRIBUTE_TYPES[column.type][1]


@dataclass(frozen=True)
class View:
    """The metadata of one schema, as JSON; ``stable_id`` makes the ``MetadataId`` values."""

    schema: Schema
    catalog: Catalog
    stable_id: Callable[..., str]
    api_url: str
    hidden: frozenset[str] = frozenset()

    # --- finding components ----------------------------------------------------------------------
    def id(self, key: str) -> str:
        return self.stable_id("metadata", key)

    def tables(self) -> list[Table]:
        return [table for name, table in sorted(self.schema.tables.items())
                if name not in self.hidden]

    def table(self, logical_name: str) -> Table | None:
        table = self.schema.tables.get(logical_name)
        return table if table is not None and logical_name not in self.hidden else None

    def table_by_id(self, metadata_id: str) -> Table | None:
        return next((table for table in self.tables()
                     if self.id(f"entity/{table.logical_name}") == metadata_id), None)

    def column_by_id(self, table: Table, metadata_id: str) -> Column | None:
        key = f"attribute/{table.logical_name}/"
        return next((c for c in table.columns.values() if self.id(key + c.name) == metadata_id),
                    None)

    def choice_by_id(self, metadata_id: str) -> str | None:
        return next((name for name in self.schema.choices
                     if self.id(f"optionset/{name}") == metadata_id), None)

    def relationships(self) -> list[Relationship]:
        found: list[Relationship] = []
        for table in self.tables():
            for column in table.columns.values():
                for target in column.targets:
                    if target.table in self.hidden:
                        continue
                    found.append(self._relationship(table, column, target.table,
                                                    target.navigation_property))
        return found

    def _relationship(self, table: Table, column: Column, referenced: str,
                      navigation: str) -> Relationship:
        named = self.catalog.relationships.get((table.logical_name, column.name, referenced))
        if named is not None:
            return Relationship(named.schema_name, referenced, table.logical_name, column.name,
                                navigation, named.referenced_navigation, dict(named.cascade),
                                custom=True)
        # Dataverse's own names: ``<Table>_Annotation`` for Notes, ``<referenced>_<referencing>_
        # <lookup>`` for the other relationships the schema file describes.
        if column.name == "objectid" and table.logical_name == "annotation":
            name = f"{referenced}_Annotations"
        else:
            name = f"{referenced}_{table.logical_name}_{column.name}"
        custom = (table.logical_name, column.name) in self.catalog.custom_columns or not (
            self.schema.tables[referenced].standard
        )
        return Relationship(name, referenced, table.logical_name, column.name, navigation, name,
                            dict(DEFAULT_CASCADE), custom)

    # --- JSON ------------------------------------------------------------------------------------
    def label(self, key: str, prop: str, default: str | None) -> dict[str, Any]:
        value = self.catalog.label(key, prop, default)
        return labels.render(value, lambda language: self.id(f"{key}#{prop}#{language}"))

    def entity(self, table: Table) -> dict[str, Any]:
        key = f"entity/{table.logical_name}"
        return {
            "@odata.type": f"#{type_name('EntityMetadata')}",
            "MetadataId": self.id(key),
            "LogicalName": table.logical_name,
            "SchemaName": table.schema_name,
            "EntitySetName": table.entity_set,
            "LogicalCollectionName": table.entity_set,
            "CollectionSchemaName": f"{table.schema_name}s",
            "PrimaryIdAttribute": table.primary_key,
            "PrimaryNameAttribute": table.primary_name,
            "ObjectTypeCode": self._object_type_code(table),
            "OwnershipType": "UserOwned" if OWNER_COLUMN in table.columns else
            "OrganizationOwned",
            "IsCustomEntity": not table.standard,
            "IsManaged": False,
            "IsActivity": False,
            "HasActivities": False,
            "HasNotes": table.has_notes,
            "IsValidForAdvancedFind": True,
            "IsIntersect": False,
            "TableType": "Standard",
            "IntroducedVersion": "1.0",
            "DisplayName": self.label(key, "DisplayName", table.display_name),
            "DisplayCollectionName": self.label(key, "DisplayCollectionName",
                                                f"{table.display_name}s"),
            "Description": self.label(key, "Description", None),
        }

    def _object_type_code(self, table: Table) -> int:
        known = OBJECT_TYPE_CODES.get(table.logical_name)
        if known is not None:
            return known
        custom = sorted(name for name in self.schema.tables if name not in OBJECT_TYPE_CODES)
        return 10_000 + custom.index(table.logical_name)

    def attribute(self, table: Table, column: Column) -> dict[str, Any]:
        key = f"attribute/{table.logical_name}/{column.name}"
        attribute_type, short = ATTRIBUTE_TYPES[column.type]
        if column.name == OWNER_COLUMN:
            attribute_type = "Owner"
        system = column.name == table.primary_key or column.name in SYSTEM_COLUMNS
        payload: dict[str, Any] = {
            "@odata.type": f"#{type_name(short)}",
            "MetadataId": self.id(key),
            "LogicalName": column.name,
            "SchemaName": column.schema_name,
            "EntityLogicalName": table.logical_name,
            "AttributeType": attribute_type,
            "AttributeTypeName": {"Value": f"{attribute_type}Type"},
            "IsCustomAttribute": (table.logical_name, column.name) in self.catalog.custom_columns,
            "IsPrimaryId": column.name == table.primary_key,
            "IsPrimaryName": column.name == table.primary_name,
            "IsValidForCreate": not column.read_only or column.name == table.primary_key,
            "IsValidForUpdate": not column.read_only and column.name != table.primary_key,
            "IsValidForRead": True,
            "IsManaged": False,
            "IsLogical": False,
            "AttributeOf": None,
            "RequiredLevel": {
                "Value": "SystemRequired" if system and column.name not in (
                    "createdon", "modifiedon", "versionnumber") else
                REQUIRED_LEVELS[column.required],
                "CanBeChanged": not system,
                "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
            },
            "DisplayName": self.label(key, "DisplayName", humanized(column.name)),
            "Description": self.label(key, "Description", None),
            "IntroducedVersion": "1.0",
        }
        payload.update(self._type_properties(column))
        return payload

    @staticmethod
    def _type_properties(column: Column) -> dict[str, Any]:
        kind = column.type
        if kind in ("string", "memo"):
            length = column.max_length or 100
            form = STRING_FORMATS.get(column.format or "text", "Text") if kind == "string" else (
                "TextArea")
            return {"MaxLength": length, "DatabaseLength": length * 2, "Format": form,
                    "FormatName": {"Value": form}}
        if kind == "int":
            return {"MinValue": INT_RANGE[0] if column.min_value is None else column.min_value,
                    "MaxValue": INT_RANGE[1] if column.max_value is None else column.max_value,
                    "Format": "None"}
        if kind == "bigint":
            return {"MinValue": BIGINT_RANGE[0], "MaxValue": BIGINT_RANGE[1]}
        if kind in ("decimal", "float", "money"):
            return {"MinValue": column.min_value if column.min_value is not None else -1e11,
                    "MaxValue": column.max_value if column.max_value is not None else 1e11,
                    "Precision": 2}
        if kind == "bool":
            return {"DefaultValue": bool(column.default)}
        if kind == "datetime":
            return {"Format": "DateAndTime", "DateTimeBehavior": {"Value": "UserLocal"}}
        if kind == "dateonly":
            return {"Format": "DateOnly", "DateTimeBehavior": {"Value": "DateOnly"}}
        if kind in ("choice", "state", "status"):
            default = column.default if isinstance(column.default, int) else -1
            return {"DefaultFormValue": default}
        if kind == "lookup":
            targets = [t.table for t in column.targets] or ["systemuser", "team"]
            return {"Targets": targets, "Format": "None"}
        return {}

    def option_set(self, table: Table, column: Column) -> dict[str, Any]:
        """The option set a column's ``OptionSet`` navigation property leads to."""
        if column.choice is not None and column.choice in self.schema.choices:
            return self.global_option_set(column.choice)
        key = f"optionset/{table.logical_name}/{column.name}"
        name = f"{table.logical_name}_{column.name}"
        common = {"MetadataId": self.id(key), "Name": name, "IsGlobal": False,
                  "IsCustomOptionSet": column.name not in SYSTEM_COLUMNS and column.type != "bool"
                  and (table.logical_name, column.name) in self.catalog.custom_columns,
                  "IsManaged": False, "DisplayName": self.label(key, "DisplayName", None),
                  "Description": self.label(key, "Description", None), "IntroducedVersion": "1.0"}
        if column.type == "bool":
            return {"@odata.type": f"#{type_name('BooleanOptionSetMetadata')}", **common,
                    "OptionSetType": "Boolean",
                    "TrueOption": self._option(key, 1, column.labels.get("true", "Yes")),
                    "FalseOption": self._option(key, 0, column.labels.get("false", "No"))}
        kind = {"state": "State", "status": "Status"}.get(column.type, "Picklist")
        options = []
        for option in column.options:
            rendered = self._option(key, option.value, option.label)
            if column.type == "state":
                status = table.columns.get("statuscode")
                rendered["@odata.type"] = f"#{type_name('StateOptionMetadata')}"
                rendered["InvariantName"] = option.label
                rendered["DefaultStatus"] = next(
                    (s.value for s in (status.options if status else ()) if s.state ==
                     option.value), None)
            elif column.type == "status":
                rendered["@odata.type"] = f"#{type_name('StatusOptionMetadata')}"
                rendered["State"] = option.state
                rendered["TransitionData"] = None
            options.append(rendered)
        return {"@odata.type": f"#{type_name('OptionSetMetadata')}", **common,
                "OptionSetType": kind, "Options": options}

    def choice_display_name(self, name: str) -> str:
        """The global choice's display name in the schema file (its name when created later)."""
        return str(self.schema.raw.get("choices", {}).get(name, {}).get("display_name", name))

    def global_option_set(self, name: str) -> dict[str, Any]:
        key = f"optionset/{name}"
        default_name = self.choice_display_name(name)
        return {
            "@odata.type": f"#{type_name('OptionSetMetadata')}",
            "MetadataId": self.id(key),
            "Name": name,
            "IsGlobal": True,
            "OptionSetType": "Picklist",
            "IsCustomOptionSet": True,
            "IsManaged": False,
            "ExternalTypeName": None,
            "IntroducedVersion": "1.0",
            "DisplayName": self.label(key, "DisplayName", default_name),
            "Description": self.label(key, "Description", None),
            "Options": [self._option(key, o.value, o.label) for o in self.schema.choices[name]],
        }

    def _option(self, set_key: str, value: int, label: str) -> dict[str, Any]:
        key = f"{set_key}/{value}"
        return {"Value": value, "Label": self.label(key, "Label", label),
                "Description": self.label(key, "Description", None), "Color": None,
                "IsManaged": False, "ExternalValue": None, "IsHidden": False, "ParentValues": [],
                "MetadataId": None, "HasChanged": None}

    def relationship(self, relationship: Relationship) -> dict[str, Any]:
        referenced = self.schema.tables[relationship.referenced]
        return {
            "@odata.type": f"#{type_name('OneToManyRelationshipMetadata')}",
            "MetadataId": self.id(f"relationship/{relationship.schema_name}"),
            "SchemaName": relationship.schema_name,
            "RelationshipType": "OneToManyRelationship",
            "ReferencedEntity": relationship.referenced,
            "ReferencedAttribute": referenced.primary_key,
            "ReferencingEntity": relationship.referencing,
            "ReferencingAttribute": relationship.column,
            "ReferencedEntityNavigationPropertyName": relationship.referenced_navigation,
            "ReferencingEntityNavigationPropertyName": relationship.navigation,
            "IsCustomRelationship": relationship.custom,
            "IsManaged": False,
            "IsHierarchical": False,
            "IsValidForAdvancedFind": True,
            "SecurityTypes": "None",
            "IntroducedVersion": "1.0",
            "CascadeConfiguration": relationship.cascade,
            "AssociatedMenuConfiguration": {"Behavior": "UseCollectionName", "Group": "Details",
                                            "Order": 10000, "Label": labels.render({}, str)},
        }


def humanized(name: str) -> str:
    """A label for a column the schema file names only by its logical name."""
    words = name.split("_", 1)[-1] if "_" in name else name
    return words[:1].upper() + words[1:]
