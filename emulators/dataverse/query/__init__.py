"""The Dataverse emulator's OData query engine: pure functions, no I/O.

``parse_query`` turns a collection GET's decoded parameters into a ``QueryPlan`` (or raises a
``QueryError`` carrying the service's status, code and message); ``run_query`` applies a plan to
rows and returns one ``QueryPage``. Strings compare under a ``Collation`` (``CI_AI`` unless the
caller passes another), as the service's SQL does.
"""

from __future__ import annotations

from emulators.dataverse.query.collation import (
    COLLATIONS,
    DEFAULT_COLLATION,
    Collation,
    collation_named,
)
from emulators.dataverse.query.errors import QueryError
from emulators.dataverse.query.model import ColumnTypes, QueryPage, QueryPlan, TableInfo
from emulators.dataverse.query.options import parse_query
from emulators.dataverse.query.paging import COUNT_LIMIT, run_query

__all__ = [
    "COLLATIONS",
    "COUNT_LIMIT",
    "DEFAULT_COLLATION",
    "Collation",
    "ColumnTypes",
    "QueryError",
    "QueryPage",
    "QueryPlan",
    "TableInfo",
    "collation_named",
    "parse_query",
    "run_query",
]
