"""Query options of a collection GET (``$select``, ``$filter``, ...) to a ``QueryPlan``."""

from __future__ import annotations

from collections.abc import Sequence

from emulators.dataverse.query.collation import DEFAULT_COLLATION, Collation
from emulators.dataverse.query.errors import QueryError, not_emulated, property_not_found
from emulators.dataverse.query.evaluate import compile_filter
from emulators.dataverse.query.filter_parser import Literal, Property, parse_expression
from emulators.dataverse.query.lexer import Kind, tokenize
from emulators.dataverse.query.model import QueryPlan, TableInfo
from emulators.dataverse.query.paging import read_skiptoken

_SUPPORTED = frozenset(
    {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$expand"}
)
# Options the service documents as unsupported, and ones it supports but the emulator lacks.
_UNSUPPORTED = frozenset({"$skip", "$search", "$format"})
_NOT_EMULATED = frozenset({"$apply"})


def parse_query(
    params: Sequence[tuple[str, str]], table: TableInfo,
    collation: Collation = DEFAULT_COLLATION,
) -> QueryPlan:
    """The plan for one collection query, from its decoded parameters in URL order.

    String comparisons in ``$filter`` and the string order of ``$orderby`` follow ``collation``.

    Parameters whose names start with neither ``$`` nor ``@`` are custom options and ignored.

    Raises:
        QueryError: an unsupported or repeated option, an unknown column, or a malformed value,
            with the service's status, code and message.
    """
    options: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for name, value in params:
        if name.startswith("@"):
            target = aliases
        elif name.startswith("$"):
            if name in _UNSUPPORTED or name not in _SUPPORTED | _NOT_EMULATED:
                raise QueryError(f"The query parameter '{name}' is not supported.")
            if name in _NOT_EMULATED:
                raise not_emulated(f"The query option '{name}'")
            target = options
        else:
            continue
        if name in target:
            raise QueryError(
                f"Query option '{name}' was specified more than once, but it must be specified "
                "at most once."
            )
        target[name] = value

    if "$expand" in options:
        _reject_expand(options["$expand"], table)
    select = _select(options.get("$select"), table)
    predicate, hint = None, None
    if "$filter" in options:
        tree = parse_expression(options["$filter"], aliases)
        predicate, hint = compile_filter(tree, table, collation)
    orderby = _orderby(options.get("$orderby"), aliases, table)
    plan = QueryPlan(
        select=select,
        predicate=predicate,
        orderby=orderby,
        top=_top(options.get("$top")),
        count=_count(options.get("$count")),
        skiptoken=options.get("$skiptoken"),
        index_hint=hint,
        table=table,
        collation=collation,
    )
    if plan.skiptoken is not None:
        read_skiptoken(plan.skiptoken, plan)  # reject a tampered token before any work
    return plan


def _select(value: str | None, table: TableInfo) -> tuple[str, ...] | None:
    if value is None or not value.strip():
        return None
    names: list[str] = []
    for item in value.split(","):
        name = item.strip()
        if name == "*":
            return None
        if name not in table.columns:
            raise property_not_found(name, table.logical_name)
        if name not in names:
            names.append(name)
    return tuple(names)


def _orderby(
    value: str | None, aliases: dict[str, str], table: TableInfo
) -> tuple[tuple[str, bool], ...]:
    if value is None:
        return ()
    order: list[tuple[str, bool]] = []
    for clause in _split_top_level(value):
        tokens = tokenize(clause)
        descending = False
        end = len(tokens) - 1  # the END token
        last = tokens[end - 1] if end >= 1 else None
        if last is not None and last.kind is Kind.IDENTIFIER and last.text in {"asc", "desc"}:
            descending = last.text == "desc"
            end -= 1
        if end != 1:
            position = tokens[min(1, end)].position
            raise QueryError(f"Syntax error at position {position} in '{clause}'.")
        expression = parse_expression(tokens[0].text, aliases)
        if isinstance(expression, Literal) or not isinstance(expression, Property):
            raise QueryError("The $orderby expression must evaluate to a property of the table.")
        if expression.name not in table.columns:
            raise property_not_found(expression.name, table.logical_name)
        if all(expression.name != name for name, _ in order):
            order.append((expression.name, descending))
    return tuple(order)


def _split_top_level(value: str) -> list[str]:
    if not value.strip():
        raise QueryError(f"Expression expected at position 0 in '{value}'.")
    return [part.strip() for part in value.split(",")]


def _top(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise QueryError(
            f"Invalid value '{value}' for $top query option found. The $top query option "
            "requires a non-negative integer value."
        )
    return int(text)


def _count(value: str | None) -> bool:
    if value is None:
        return False
    text = value.strip()
    if text not in {"true", "false"}:
        raise QueryError(f"'{value}' is not a valid count option.")
    return text == "true"


def _reject_expand(value: str, table: TableInfo) -> None:
    # Navigation properties are not modelled, so no expansion can succeed; report the first
    # item the way the service reports an expansion of something that is not navigable.
    first = value.split(",")[0].split("(")[0].strip()
    if first in table.columns:
        raise QueryError(
            f"Property '{first}' on type 'Microsoft.Dynamics.CRM.{table.logical_name}' is not a "
            "navigation property or complex property. Only navigation properties can be expanded."
        )
    raise property_not_found(first, table.logical_name)
