"""What the metadata API keeps besides the schema the data API runs on.

The schema (``emulators/dataverse/schema.py``) holds everything that changes how rows are read and
written. The catalog holds the rest: labels set through the API (the schema's own names are the
defaults), the names and cascades of relationships created through it, which columns are custom,
and the solution each created component was added to (``MSCRM.SolutionUniqueName``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from emulators.dataverse.metadata import labels
from emulators.dataverse.schema import Schema

# What Dataverse sets on a relationship created without CascadeConfiguration (referential,
# remove link).
DEFAULT_CASCADE: Mapping[str, str] = {
    "Assign": "NoCascade", "Archive": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade",
    "Reparent": "NoCascade", "Share": "NoCascade", "Unshare": "NoCascade",
    "RollupView": "NoCascade",
}
CASCADE_VALUES = frozenset({"NoCascade", "Cascade", "Active", "UserOwned", "RemoveLink",
                            "Restrict"})


@dataclass(frozen=True)
class RelationshipName:
    """A created one-to-many relationship: its name and the names it gave its sides."""

    schema_name: str
    referenced_navigation: str
    cascade: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CASCADE))


@dataclass
class Catalog:
    labels: dict[str, dict[int, str]] = field(default_factory=dict)  # "<component>#<property>"
    custom_columns: set[tuple[str, str]] = field(default_factory=set)  # (table, column)
    # (referencing table, lookup column, referenced table) -> what the creator named it
    relationships: dict[tuple[str, str, str], RelationshipName] = field(default_factory=dict)
    solutions: dict[str, str] = field(default_factory=dict)  # component key -> unique name

    @classmethod
    def for_schema(cls, schema: Schema) -> Catalog:
        """The catalog of a schema loaded from the file: the connector's prefixed columns are
        custom, everything else is the platform's."""
        prefix = schema.publisher_prefix + "_"
        custom = {
            (table.logical_name, column.name)
            for table in schema.tables.values() for column in table.columns.values()
            if column.name.startswith(prefix) and column.name != table.primary_key
        }
        return cls(custom_columns=custom)

    def label(self, key: str, prop: str, default: str | None) -> dict[int, str]:
        stored = self.labels.get(f"{key}#{prop}")
        return dict(stored) if stored is not None else labels.of(default)

    def set_label(self, key: str, prop: str, value: Mapping[int, str]) -> None:
        self.labels[f"{key}#{prop}"] = dict(value)

    def forget(self, key: str) -> None:
        """Drop what is kept about a deleted component (and the components under it)."""
        def under(component: str) -> bool:
            return component == key or component.startswith(key + "/")

        for stored in [name for name in self.labels if under(name.split("#", 1)[0])]:
            del self.labels[stored]
        for stored in [name for name in self.solutions if under(name)]:
            del self.solutions[stored]

    def keep_only(self, schema: Schema) -> None:
        """Forget what belongs to tables and columns ``schema`` no longer has."""
        self.custom_columns = {
            (table, column) for table, column in self.custom_columns
            if table in schema.tables and column in schema.tables[table].columns
        }
        self.relationships = {
            key: name for key, name in self.relationships.items()
            if key[0] in schema.tables and key[1] in schema.tables[key[0]].columns
            and key[2] in schema.tables
        }
