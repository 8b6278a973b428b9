"""The changes a plan makes, one metadata request (or two) each, in the order they must run.

Phases order the steps across items: choices before the columns that use them, tables before
their columns, deletions before re-creations, lookups once every table exists. Each step is a type
of its own, with only the fields its request needs, so the plan's tests can inspect them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from provisioning.model import Choice, Column, Option, Table

OptionAction = Literal["InsertOptionValue", "UpdateOptionValue", "DeleteOptionValue"]


@dataclass(frozen=True)
class CreateChoice:
    choice: Choice
    phase: ClassVar[int] = 0

    def describe(self) -> str:
        return f"create choice {self.choice.name}"


@dataclass(frozen=True)
class ChangeOption:
    action: OptionAction
    choice: str
    option: Option
    phase: ClassVar[int] = 0

    def describe(self) -> str:
        verb = {"InsertOptionValue": "add", "UpdateOptionValue": "relabel",
                "DeleteOptionValue": "remove"}[self.action]
        return f"{verb} option {self.option.value} of {self.choice}"


@dataclass(frozen=True)
class CreateTable:
    table: Table
    primary: Column
    phase: ClassVar[int] = 1

    def describe(self) -> str:
        return f"create table {self.table.logical_name}"


@dataclass(frozen=True)
class UpdateTable:
    table: str
    metadata_id: str
    definition: Mapping[str, Any]
    phase: ClassVar[int] = 1

    def describe(self) -> str:
        return f"update table {self.table}"


@dataclass(frozen=True)
class DeleteColumn:
    table: str
    name: str
    metadata_id: str
    phase: ClassVar[int] = 2

    def describe(self) -> str:
        return f"delete column {self.table}.{self.name}"


@dataclass(frozen=True)
class CreateColumn:
    table: str
    column: Column
    phase: ClassVar[int] = 3

    def describe(self) -> str:
        return f"create column {self.table}.{self.column.name}"


@dataclass(frozen=True)
class UpdateColumn:
    table: str
    name: str
    metadata_id: str
    definition: Mapping[str, Any]
    phase: ClassVar[int] = 3

    def describe(self) -> str:
        return f"update column {self.table}.{self.name}"


@dataclass(frozen=True)
class CreateLookup:
    table: str
    column: Column
    target: Table
    phase: ClassVar[int] = 4

    def describe(self) -> str:
        return f"create lookup {self.table}.{self.column.name} to {self.target.logical_name}"


Step = (CreateChoice | ChangeOption | CreateTable | UpdateTable | DeleteColumn | CreateColumn
        | UpdateColumn | CreateLookup)
