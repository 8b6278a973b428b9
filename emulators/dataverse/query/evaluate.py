"""Binds a ``$filter`` tree to a table and compiles it to one closure over a row.

Null semantics are SQL's, because the service translates the filter to SQL: a comparison with
a null column value is unknown, and unknown never matches, negated or not. So ``col ne 'x'``
and ``not (col eq 'x')`` both skip rows where ``col`` is null; only ``col eq null`` /
``col ne null`` test for null. ``not`` is pushed down to the comparisons (De Morgan), which
gives exactly those semantics with two-valued closures.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.dataverse.query.collation import Collation
from emulators.dataverse.query.errors import (
    QueryError,
    attribute_not_found,
    not_emulated,
    property_not_found,
)
from emulators.dataverse.query.filter_parser import (
    Call,
    Compare,
    Literal,
    Logical,
    NamedCall,
    Node,
    Not,
    Property,
    PropertyPath,
)
from emulators.dataverse.query.functions import (
    CANONICAL_FUNCTIONS,
    CRM,
    CRM_NOT_EMULATED,
    CRM_SIGNATURES,
    LIKE_FUNCTIONS,
)
from emulators.dataverse.query.like import like_matcher
from emulators.dataverse.query.model import EDM_TYPES, INDEXABLE_TYPES, Predicate, TableInfo
from emulators.dataverse.query.values import (
    STRING_TYPES,
    Normalizer,
    normalizer,
    value_from_text,
    value_to_text,
)

Hint = tuple[str, frozenset[str]] | None

_OPERATOR_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
    "and": "And",
    "or": "Or",
}
_INVERSE = {"eq": "ne", "ne": "eq", "gt": "le", "ge": "lt", "lt": "ge", "le": "gt"}
_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_EDM_FAMILIES = {
    "Edm.String": "string",
    "Edm.Guid": "guid",
    "Edm.Int32": "number",
    "Edm.Int64": "number",
    "Edm.Decimal": "number",
    "Edm.Double": "number",
    "Edm.Boolean": "bool",
    "Edm.DateTimeOffset": "datetime",
    "Edm.Date": "dateonly",
}
def _never(row: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class _Compiled:
    predicate: Predicate
    hint: Hint = None
    constant: bool | None = None


def _constant(value: bool) -> _Compiled:
    return _Compiled(_never if not value else (lambda row: True), None, value)


def compile_filter(
    node: Node, table: TableInfo, collation: Collation
) -> tuple[Predicate | None, Hint]:
    """The row predicate (None when every row matches) and the index hint of a filter tree.

    Strings compare under ``collation``; hint values are its keys.

    Raises:
        QueryError: unknown columns or functions, or operands of incompatible types.
    """
    binder = _Binder(table, collation)
    if binder.edm_of(node) not in {"Edm.Boolean", None}:
        raise QueryError("The $filter expression must evaluate to a single boolean value.")
    compiled = binder.boolean(node, negate=False)
    if compiled.constant is True:
        return None, None
    inner = compiled.predicate

    def predicate(row: Mapping[str, Any]) -> bool:
        # A stored value of an unexpected type must not fail the whole request.
        try:
            return inner(row)
        except (AttributeError, TypeError, ValueError):
            return False

    return predicate, compiled.hint


class _Binder:
    def __init__(self, table: TableInfo, collation: Collation) -> None:
        self.table = table
        self.columns = table.columns
        self.collation = collation

    def column_type(self, prop: Property) -> str:
        kind = self.columns.get(prop.name)
        if kind is None:
            raise property_not_found(prop.name, self.table.logical_name)
        return kind

    def edm_of(self, node: Node) -> str | None:
        if isinstance(node, Literal):
            return node.edm
        if isinstance(node, Property):
            return EDM_TYPES[self.column_type(node)]
        if isinstance(node, PropertyPath):
            self._reject_path(node)
        if isinstance(node, Call):
            self._check_function_name(node.name)
        if isinstance(node, Not):
            edm = self.edm_of(node.operand)
            if edm not in {"Edm.Boolean", None}:
                raise QueryError(
                    "A unary operator with an incompatible type was detected. Found operand "
                    f"type '{edm}' for operator kind 'Not'."
                )
        return "Edm.Boolean"

    def _reject_path(self, node: PropertyPath) -> None:
        if node.first not in self.columns:
            raise property_not_found(node.first, self.table.logical_name)
        if node.lambda_operator in {"any", "all"}:
            raise not_emulated(f"The lambda operator '{node.lambda_operator}'")
        raise not_emulated("A property path")

    def _check_function_name(self, name: str) -> None:
        if name in LIKE_FUNCTIONS:
            return
        if name in CANONICAL_FUNCTIONS:
            raise QueryError(f"The '{name}' function is not supported.")
        raise QueryError(
            f"An unknown function with name '{name}' was found. This may also be a function "
            "import or a key lookup on a navigation property, which is not allowed."
        )

    def boolean(self, node: Node, *, negate: bool) -> _Compiled:
        if isinstance(node, Logical):
            return self._logical(node, negate)
        if isinstance(node, Not):
            self.edm_of(node)
            return self.boolean(node.operand, negate=not negate)
        if isinstance(node, Compare):
            return self._compare(node, negate)
        if isinstance(node, Call):
            return self._like(node, negate)
        if isinstance(node, NamedCall):
            return self._query_function(node, negate)
        if isinstance(node, Property):
            return self._bool_column(node, negate)
        if isinstance(node, Literal):
            if node.edm is None:
                return _constant(False)  # null is unknown: never matches
            return _constant(bool(node.value) != negate)
        assert isinstance(node, PropertyPath)
        self._reject_path(node)
        raise AssertionError("unreachable")

    def _logical(self, node: Logical, negate: bool) -> _Compiled:
        left_edm, right_edm = self.edm_of(node.left), self.edm_of(node.right)
        if left_edm not in {"Edm.Boolean", None} or right_edm not in {"Edm.Boolean", None}:
            raise _incompatible(left_edm, right_edm, node.op)
        left = self.boolean(node.left, negate=negate)
        right = self.boolean(node.right, negate=negate)
        conjunction = (node.op == "and") != negate
        return _conjoin(left, right) if conjunction else _disjoin(left, right)

    def _bool_column(self, node: Property, negate: bool) -> _Compiled:
        if self.column_type(node) != "bool":
            raise QueryError("The $filter expression must evaluate to a single boolean value.")
        name, wanted = node.name, not negate
        return _Compiled(lambda row: row.get(name) is wanted)

    def _compare(self, node: Compare, negate: bool) -> _Compiled:
        left, right, op = node.left, node.right, node.op
        left_edm, right_edm = self.edm_of(left), self.edm_of(right)
        _check_compatible(left, right, left_edm, right_edm, op)
        if isinstance(left, Literal) and not isinstance(right, Literal):
            left, right, op = right, left, _MIRROR[op]
        if isinstance(left, Property) and isinstance(right, Literal):
            return self._column_to_literal(left, op, right, negate)
        if isinstance(left, Property) and isinstance(right, Property):
            return self._column_to_column(left, op, right, negate)
        if isinstance(left, Literal) and isinstance(right, Literal):
            matched = _compare_constants(left, op, right, self.collation)
            return _constant(matched != negate)
        if isinstance(right, Literal) and right.edm == "Edm.Boolean" and op in {"eq", "ne"}:
            keep = (op == "eq") == bool(right.value)
            return self.boolean(left, negate=negate != (not keep))
        raise not_emulated("Comparing two expressions")

    def _column_to_literal(
        self, prop: Property, op: str, literal: Literal, negate: bool
    ) -> _Compiled:
        name, kind = prop.name, self.column_type(prop)
        if literal.edm is None:
            if op not in {"eq", "ne"}:
                return _constant(False)
            wants_null = (op == "eq") != negate
            if wants_null:
                return _Compiled(lambda row: row.get(name) is None)
            return _Compiled(lambda row: row.get(name) is not None)
        effective = _INVERSE[op] if negate else op
        compare = _OPERATORS[effective]
        normalize = normalizer(kind, self.collation, ordered=effective not in {"eq", "ne"})
        expected = _literal_value(literal, kind, normalize)
        hint: Hint = None
        if effective == "eq" and kind in INDEXABLE_TYPES:
            hint = (name, frozenset({expected}))
        if kind in STRING_TYPES and effective in {"eq", "ne"}:
            # The hot path of most filters: one collation key per row and a string compare.
            equal, key = effective == "eq", self.collation.key

            def string_equality(row: Mapping[str, Any]) -> bool:
                value = row.get(name)
                if value is None:
                    return False
                return (key(value) == expected) is equal

            return _Compiled(string_equality, hint)

        def column_compare(row: Mapping[str, Any]) -> bool:
            value = row.get(name)
            return value is not None and compare(normalize(value), expected)

        return _Compiled(column_compare, hint)

    def _column_to_column(
        self, left: Property, op: str, right: Property, negate: bool
    ) -> _Compiled:
        left_name, right_name = left.name, right.name
        effective = _INVERSE[op] if negate else op
        ordered = effective not in {"eq", "ne"}
        left_normalize = normalizer(self.column_type(left), self.collation, ordered=ordered)
        right_normalize = normalizer(self.column_type(right), self.collation, ordered=ordered)
        compare = _OPERATORS[effective]

        def columns_compare(row: Mapping[str, Any]) -> bool:
            a, b = row.get(left_name), row.get(right_name)
            if a is None or b is None:
                return False
            return compare(left_normalize(a), right_normalize(b))

        return _Compiled(columns_compare)

    def _like(self, node: Call, negate: bool) -> _Compiled:
        self._check_function_name(node.name)
        signature = (
            f"No function signature for the function with name '{node.name}' matches the "
            "specified arguments. The function signatures considered are: "
            f"{node.name}(Edm.String Nullable=true, Edm.String Nullable=true)."
        )
        if len(node.args) != 2:
            raise QueryError(signature)
        subject, pattern = node.args
        subject_edm, pattern_edm = self.edm_of(subject), self.edm_of(pattern)
        if subject_edm not in {"Edm.String", None} or pattern_edm not in {"Edm.String", None}:
            raise QueryError(signature)
        if not isinstance(subject, Property) or not isinstance(pattern, Literal):
            raise not_emulated(f"'{node.name}' with these arguments")
        if pattern.edm is None:
            return _constant(False)
        name = subject.name
        fold = self.collation.fold
        matches = like_matcher(node.name, fold(pattern.value))
        wanted = not negate

        def like(row: Mapping[str, Any]) -> bool:
            value = row.get(name)
            return value is not None and matches(fold(value)) is wanted

        return _Compiled(like)

    def _query_function(self, node: NamedCall, negate: bool) -> _Compiled:
        short = node.name[len(CRM) :]
        signature = CRM_SIGNATURES.get(short)
        if signature is None:
            if short in CRM_NOT_EMULATED:
                raise not_emulated(f"The query function '{node.name}'")
            self._check_function_name(node.name)
        assert signature is not None
        names = [name for name, _ in node.args]
        if sorted(names) != sorted(signature):
            raise QueryError(
                f"Could not find a function named '{node.name}' with parameters "
                f"'{','.join(names)}'."
            )
        args = dict(node.args)
        name, kind = self._named_column(args["PropertyName"])
        if short in {"Null", "NotNull"}:
            wants_null = (short == "Null") != negate
            if wants_null:
                return _Compiled(lambda row: row.get(name) is None)
            return _Compiled(lambda row: row.get(name) is not None)
        ordered = short not in {"In", "NotIn"}
        normalize = normalizer(kind, self.collation, ordered=ordered)
        values = [normalize(value) for value in self._property_values(args["PropertyValues"], kind)]
        if short in {"In", "NotIn"}:
            if not values:
                raise QueryError(f"The '{short}' function requires at least one value.")
            wanted = (short == "In") != negate
            members = frozenset(values)
            hint: Hint = (name, members) if wanted and kind in INDEXABLE_TYPES else None

            def member(row: Mapping[str, Any]) -> bool:
                value = row.get(name)
                return value is not None and (normalize(value) in members) is wanted

            return _Compiled(member, hint)
        if len(values) != 2:
            raise QueryError(f"The '{short}' function requires exactly two values.")
        low, high = values
        inside = (short == "Between") != negate

        def between(row: Mapping[str, Any]) -> bool:
            value = row.get(name)
            return value is not None and (low <= normalize(value) <= high) is inside

        return _Compiled(between)

    def _named_column(self, node: Node) -> tuple[str, str]:
        if not isinstance(node, Literal) or node.edm != "Edm.String":
            raise QueryError(
                f"Expression of type '{self.edm_of(node)}' cannot be converted to type "
                "'Edm.String'."
            )
        name: str = node.value
        if name in self.columns:
            return name, self.columns[name]
        lookup = f"_{name}_value"
        if lookup in self.columns:
            return lookup, self.columns[lookup]
        raise attribute_not_found(name, self.table.logical_name)

    def _property_values(self, node: Node, kind: str) -> list[Any]:
        if not isinstance(node, Literal) or node.edm != "Collection":
            raise QueryError(
                f"Expression of type '{self.edm_of(node)}' cannot be converted to type "
                "'Collection(Edm.String)'."
            )
        items = [item for item in node.value if item is not None]
        return [value_from_text(value_to_text(item), kind) for item in items]


def _literal_value(literal: Literal, kind: str, normalize: Normalizer) -> Any:
    if kind in STRING_TYPES:
        return normalize(literal.value)
    if kind == "datetime" and literal.edm == "Edm.Date":
        day: dt.date = literal.value
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return literal.value


def _compare_constants(left: Literal, op: str, right: Literal, collation: Collation) -> bool:
    if left.edm is None or right.edm is None:
        if op not in {"eq", "ne"}:
            return False
        both_null = left.edm is None and right.edm is None
        return both_null if op == "eq" else not both_null
    a, b = left.value, right.value
    if left.edm == "Edm.String":
        collate = collation.key if op in {"eq", "ne"} else collation.order
        a, b = collate(a), collate(b)
    return _OPERATORS[op](a, b)


def _check_compatible(
    left: Node, right: Node, left_edm: str | None, right_edm: str | None, op: str
) -> None:
    if left_edm is None or right_edm is None:
        if "Collection" in {left_edm, right_edm}:
            raise _incompatible(left_edm, right_edm, op)
        return
    left_family, right_family = _EDM_FAMILIES.get(left_edm), _EDM_FAMILIES.get(right_edm)
    if left_family is not None and left_family == right_family:
        return
    # A date literal reads as midnight UTC against a date-time column (not the other way).
    if {left_family, right_family} == {"datetime", "dateonly"}:
        date_side = left if left_family == "dateonly" else right
        if isinstance(date_side, Literal):
            return
    raise _incompatible(left_edm, right_edm, op)


def _incompatible(left_edm: str | None, right_edm: str | None, op: str) -> QueryError:
    return QueryError(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left_edm}' and '{right_edm}' for operator kind '{_OPERATOR_KINDS[op]}'."
    )


def _conjoin(left: _Compiled, right: _Compiled) -> _Compiled:
    if left.constant is False or right.constant is False:
        return _constant(False)
    if left.constant is True:
        return right
    if right.constant is True:
        return left
    hint = left.hint or right.hint
    if left.hint and right.hint and left.hint[0] == right.hint[0]:
        hint = (left.hint[0], left.hint[1] & right.hint[1])
    first, second = left.predicate, right.predicate
    return _Compiled(lambda row: first(row) and second(row), hint)


def _disjoin(left: _Compiled, right: _Compiled) -> _Compiled:
    if left.constant is True or right.constant is True:
        return _constant(True)
    if left.constant is False:
        return right
    if right.constant is False:
        return left
    hint: Hint = None
    if left.hint and right.hint and left.hint[0] == right.hint[0]:
        hint = (left.hint[0], left.hint[1] | right.hint[1])
    first, second = left.predicate, right.predicate
    return _Compiled(lambda row: first(row) or second(row), hint)
