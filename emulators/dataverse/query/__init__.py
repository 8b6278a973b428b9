"""The Dataverse emulator's OData query engine: pure functions, no I/O.

``parse_query`` turns a collection GET's decoded parameters into a ``QueryPlan`` (or raises a
``QueryError`` carrying the service's status, code and message); ``run_query`` applies a plan to
rows and returns one ``QueryPage``.
"""

from __future__ import annotations

from emulators.dataverse.query.errors import QueryError
from emulators.dataverse.query.model import ColumnTypes, QueryPage, QueryPlan, TableInfo
from emulators.dataverse.query.options import parse_query
from emulators.dataverse.query.paging import COUNT_LIMIT, run_query

__all__ = [
    "COUNT_LIMIT",
    "ColumnTypes",
    "QueryError",
    "QueryPage",
    "QueryPlan",
    "TableInfo",
    "parse_query",
    "run_query",
]
