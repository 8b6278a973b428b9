"""``$filter`` text to a syntax tree, with the OData library's precedence and messages.

Precedence, loosest first: ``or``, ``and``, comparisons, ``not``, primaries. As in the service,
``not`` binds tighter than a comparison, so ``not a eq b`` means ``(not a) eq b``.
Parameter aliases (``@p1``) are replaced by their own parsed text; an alias without a value is
``null``, as the service documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulators.dataverse.query.errors import QueryError, expression_expected, syntax_error
from emulators.dataverse.query.lexer import Kind, Token, is_int32, tokenize
from emulators.dataverse.query.values import parse_json_array

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_ARITHMETIC = frozenset({"add", "sub", "mul", "div", "divby", "mod"})
_MAX_ALIAS_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Literal:
    edm: str | None  # None for null
    value: Any
    position: int


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class PropertyPath:
    """``a/b`` or ``a/any(...)``: navigation and lambdas, which the emulator does not model."""

    first: str
    lambda_operator: str | None
    position: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node
    position: int


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # "and" | "or"
    left: Node
    right: Node
    position: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    position: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    position: int


@dataclass(frozen=True, slots=True)
class NamedCall:
    """``Microsoft.Dynamics.CRM.<Fn>(Name=value, ...)``."""

    name: str
    args: tuple[tuple[str, Node], ...]
    position: int


Node = Literal | Property | PropertyPath | Compare | Logical | Not | Call | NamedCall

_LITERAL_KINDS: Mapping[Kind, str] = {
    Kind.STRING: "Edm.String",
    Kind.DECIMAL: "Edm.Decimal",
    Kind.DOUBLE: "Edm.Double",
    Kind.GUID: "Edm.Guid",
    Kind.DATETIME: "Edm.DateTimeOffset",
    Kind.DATE: "Edm.Date",
}


def parse_expression(text: str, aliases: Mapping[str, str], *, depth: int = 0) -> Node:
    """The syntax tree of one whole expression.

    Raises:
        QueryError: a lexical or syntax error, with the service's message.
    """
    return _Parser(text, aliases, depth).parse()


class _Parser:
    def __init__(self, text: str, aliases: Mapping[str, str], depth: int) -> None:
        if depth > _MAX_ALIAS_DEPTH:
            raise QueryError("Recursion depth exceeded allowed limit.")
        self.text = text
        self.aliases = aliases
        self.depth = depth
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def _kind(self) -> Kind:
        # A method, not the property, so type checkers do not narrow it across _advance().
        return self.tokens[self.index].kind

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def _is_word(self, *words: str) -> bool:
        return self._kind() is Kind.IDENTIFIER and self.token.text in words

    def parse(self) -> Node:
        node = self._or()
        if self._kind() is not Kind.END:
            raise syntax_error(self.token.position, self.text)
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._is_word("or"):
            position = self._advance().position
            node = Logical("or", node, self._and(), position)
        return node

    def _and(self) -> Node:
        node = self._comparison()
        while self._is_word("and"):
            position = self._advance().position
            node = Logical("and", node, self._comparison(), position)
        return node

    def _comparison(self) -> Node:
        node = self._unary()
        while self._kind() is Kind.IDENTIFIER:
            word = self.token.text
            if word in COMPARISONS:
                position = self._advance().position
                node = Compare(word, node, self._unary(), position)
            elif word in _ARITHMETIC or word in {"has", "in"}:
                raise QueryError(f"The '{word}' operator is not supported.")
            else:
                break
        return node

    def _unary(self) -> Node:
        if self._is_word("not"):
            position = self._advance().position
            return Not(self._unary(), position)
        return self._primary()

    def _primary(self) -> Node:
        token = self.token
        kind = token.kind
        if kind is Kind.OPEN:
            self._advance()
            node = self._or()
            if self._kind() is not Kind.CLOSE:
                raise QueryError(
                    f"')' or operator expected at position {self.token.position} in '{self.text}'."
                )
            self._advance()
            return node
        if kind in _LITERAL_KINDS:
            self._advance()
            return Literal(_LITERAL_KINDS[kind], token.value, token.position)
        if kind is Kind.INTEGER:
            self._advance()
            edm = "Edm.Int32" if is_int32(token.value) else "Edm.Int64"
            return Literal(edm, token.value, token.position)
        if kind is Kind.BRACKET:
            self._advance()
            return Literal("Collection", tuple(parse_json_array(token.value)), token.position)
        if kind is Kind.ALIAS:
            self._advance()
            return self._alias(token)
        if kind is Kind.IDENTIFIER:
            return self._identifier()
        raise expression_expected(token.position, self.text)

    def _alias(self, token: Token) -> Node:
        text = self.aliases.get(token.text)
        if text is None:
            return Literal(None, None, token.position)
        return parse_expression(text, self.aliases, depth=self.depth + 1)

    def _identifier(self) -> Node:
        token = self._advance()
        word = token.text
        if word in {"true", "false"}:
            return Literal("Edm.Boolean", word == "true", token.position)
        if word == "null":
            return Literal(None, None, token.position)
        if self._kind() is Kind.OPEN:
            self._advance()
            if word.startswith("Microsoft.Dynamics.CRM."):
                return NamedCall(word, self._named_arguments(), token.position)
            return Call(word, self._arguments(), token.position)
        if self._kind() is Kind.SLASH:
            return self._path(token)
        return Property(word, token.position)

    def _arguments(self) -> tuple[Node, ...]:
        args: list[Node] = []
        if self._kind() is Kind.CLOSE:
            self._advance()
            return ()
        while True:
            args.append(self._or())
            if self._kind() is Kind.CLOSE:
                self._advance()
                return tuple(args)
            if self._kind() is not Kind.COMMA:
                raise QueryError(
                    f"')' or ',' expected at position {self.token.position} in '{self.text}'."
                )
            self._advance()

    def _named_arguments(self) -> tuple[tuple[str, Node], ...]:
        args: list[tuple[str, Node]] = []
        if self._kind() is Kind.CLOSE:
            self._advance()
            return ()
        while True:
            name = self._advance()
            if name.kind is not Kind.IDENTIFIER or self._kind() is not Kind.EQUALS:
                raise syntax_error(name.position, self.text)
            self._advance()
            args.append((name.text, self._or()))
            if self._kind() is Kind.CLOSE:
                self._advance()
                return tuple(args)
            if self._kind() is not Kind.COMMA:
                raise QueryError(
                    f"')' or ',' expected at position {self.token.position} in '{self.text}'."
                )
            self._advance()

    def _path(self, first: Token) -> Node:
        lambda_operator: str | None = None
        while self._kind() is Kind.SLASH:
            self._advance()
            segment = self._advance()
            if segment.kind is not Kind.IDENTIFIER:
                raise syntax_error(segment.position, self.text)
            if self._kind() is Kind.OPEN:
                lambda_operator = segment.text
                self._skip_parenthesised()
        return PropertyPath(first.text, lambda_operator, first.position)

    def _skip_parenthesised(self) -> None:
        depth = 0
        while True:
            token = self._advance()
            if token.kind is Kind.END:
                raise QueryError(
                    f"')' or ',' expected at position {token.position} in '{self.text}'."
                )
            if token.kind is Kind.OPEN:
                depth += 1
            elif token.kind is Kind.CLOSE:
                depth -= 1
                if depth == 0:
                    return
