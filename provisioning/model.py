"""The schema as provisioning compares it: choices, tables and columns, desired or found.

The same types describe what ``schema.json`` asks for (``schema_file``) and what the metadata API
reports (``readback``), so comparing the two is comparing fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Labels are written, and read back, in this language; other languages are left as they are.
LABEL_LANGUAGE = 1033
# The schema file's requirement levels and the metadata API's names for them.
API_REQUIRED_LEVEL = {"none": "None", "recommended": "Recommended",
                      "application": "ApplicationRequired", "system": "SystemRequired"}
# What a column gets when the schema file leaves a limit out.
DEFAULT_MAX_LENGTH = {"string": 100, "memo": 2000}
INT_RANGE = (-2_147_483_648, 2_147_483_647)


@dataclass(frozen=True)
class Option:
    value: int
    label: str
    state: int | None = None  # status options belong to a state


@dataclass(frozen=True)
class Choice:
    """A global choice (option set)."""

    name: str
    display_name: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Target:
    table: str
    navigation_property: str


@dataclass(frozen=True)
class Column:
    name: str
    schema_name: str
    kind: str  # the schema file's column types (``string``, ``choice``, ``lookup``, ...)
    display_name: str = ""
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    required: str = "none"  # none | recommended | application | system
    format: str | None = None  # strings: email | url | text
    default: bool | int | None = None
    choice: str | None = None  # the global choice a choice column uses
    options: tuple[Option, ...] = ()  # state and status columns (and local choices read back)
    targets: tuple[Target, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # booleans: "true"/"false" labels


@dataclass(frozen=True)
class Table:
    logical_name: str
    schema_name: str
    entity_set: str
    display_name: str
    standard: bool
    requires_app: str | None
    primary_key: str
    primary_name: str
    has_notes: bool
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)


@dataclass(frozen=True)
class DesiredSchema:
    prefix: str  # the publisher's customization prefix (``ec``)
    choices: Mapping[str, Choice]
    tables: tuple[Table, ...]
    system_columns: frozenset[str]  # columns every table has (createdon, ...)

    def table(self, logical_name: str) -> Table | None:
        return next((table for table in self.tables if table.logical_name == logical_name), None)

    def is_custom_name(self, name: str) -> bool:
        return name.startswith(self.prefix + "_")


@dataclass(frozen=True)
class FoundChoice:
    name: str
    metadata_id: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class FoundTable:
    """A table as the metadata API reports it, with the raw definitions a PUT sends back (they
    carry the ``MetadataId`` keys too)."""

    table: Table
    definition: Mapping[str, Any]
    attribute_definitions: Mapping[str, Mapping[str, Any]]

    @property
    def metadata_id(self) -> str:
        return str(self.definition["MetadataId"])

    def attribute_id(self, name: str) -> str:
        return str(self.attribute_definitions[name]["MetadataId"])
