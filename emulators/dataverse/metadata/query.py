"""``$select``, ``$filter`` and ``$expand`` on metadata.

Metadata queries are small: a ``$select`` of a type's properties (``MetadataId`` always comes
back, as it is the key), a ``$filter`` of ``eq``/``ne`` comparisons joined by ``and``/``or``
(enough for ``LogicalName eq 'contact'`` or ``IsCustomEntity eq true``), and ``$expand`` of
navigation properties with nested options. Other query options are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from emulators.dataverse.metadata import failures

Predicate = Callable[[Mapping[str, Any]], bool]
_SUPPORTED = frozenset({"$select", "$filter", "$expand"})
_ENUM_LITERAL = re.compile(r"^[A-Za-z.]+'([^']*)'$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Options:
    select: tuple[str, ...] | None = None
    predicate: Predicate | None = None
    # navigation property -> its own options, still raw: they are checked against the type the
    # property leads to (``parse_options`` again) when it is expanded.
    expand: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def project(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """``item`` reduced to the selected properties (plus the type and key)."""
        if self.select is None:
            return dict(item)
        kept = {"@odata.type", "MetadataId", *self.select}
        return {name: value for name, value in item.items() if name in kept}

    def matches(self, item: Mapping[str, Any]) -> bool:
        return self.predicate is None or self.predicate(item)


def options_from_query(raw_query: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if not name.startswith("$"):
            continue
        if name not in _SUPPORTED:
            raise failures.not_emulated(f"The query option '{name}' on metadata")
        if name in found:
            raise failures.query(f"Query option '{name}' was specified more than once, but it "
                                 "must be specified at most once.")
        found[name] = value
    return found


def parse_options(
    raw: Mapping[str, str], *, type_short: str, properties: frozenset[str],
    navigation: frozenset[str] = frozenset(),
) -> Options:
    """Options of one request (or of one ``$expand`` item) on a type with ``properties``."""
    select = None
    if "$select" in raw:
        select = tuple(name.strip() for name in raw["$select"].split(",") if name.strip())
        for name in select:
            if name not in properties:
                raise failures.unknown_select(name, type_short)
    predicate = _parse_filter(raw["$filter"], type_short, properties) if "$filter" in raw else None
    expand: dict[str, Mapping[str, str]] = {}
    if "$expand" in raw:
        for item in _split_outside(raw["$expand"], ","):
            name, nested = _expand_item(item)
            if name not in navigation:
                raise failures.unknown_select(name, type_short)
            expand[name] = _nested(nested)
    return Options(select=select, predicate=predicate, expand=expand)


def _expand_item(text: str) -> tuple[str, str]:
    text = text.strip()
    if "(" not in text:
        return text, ""
    if not text.endswith(")"):
        raise failures.query(f"Syntax error in '$expand={text}'.")
    name, _, rest = text.partition("(")
    return name.strip(), rest[:-1]


def _nested(text: str) -> dict[str, str]:
    raw: dict[str, str] = {}
    for item in _split_outside(text, ";"):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in _SUPPORTED:
            raise failures.not_emulated(f"The nested query option '{name}' on metadata")
        raw[name] = value
    return raw


def _split_outside(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == separator and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _parse_filter(text: str, type_short: str, properties: frozenset[str]) -> Predicate:
    alternatives = []
    for branch in _split_words(text, "or"):
        terms = [_comparison(term, type_short, properties) for term in _split_words(branch, "and")]
        alternatives.append(terms)

    def predicate(item: Mapping[str, Any]) -> bool:
        return any(all(term(item) for term in terms) for terms in alternatives)

    return predicate


def _split_words(text: str, word: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    tokens = re.split(r"(\s+|')", text)
    for token in tokens:
        if token == "'":
            quoted = not quoted
        if not quoted and token == word:
            parts.append("".join(current))
            current = []
        else:
            current.append(token)
    parts.append("".join(current))
    cleaned = [part.strip() for part in parts]
    if any(not part for part in cleaned):
        raise failures.query(f"Syntax error in '$filter={text}'.")
    return cleaned


def _comparison(text: str, type_short: str, properties: frozenset[str]) -> Predicate:
    found = re.fullmatch(r"\(?\s*([A-Za-z]+)\s+(eq|ne)\s+(.+?)\s*\)?", text)
    if found is None:
        raise failures.not_emulated(f"The filter '{text}' on metadata (only eq and ne)")
    name, operator, literal = found.groups()
    if name not in properties:
        raise failures.unknown_select(name, type_short)
    wanted = _literal(literal)

    def compare(item: Mapping[str, Any]) -> bool:
        value = item.get(name)
        if isinstance(value, str) and isinstance(wanted, str) and GUID.match(wanted):
            value, other = value.lower(), wanted.lower()
        else:
            other = wanted
        return (value == other) if operator == "eq" else (value != other)

    return compare


def _literal(text: str) -> Any:
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    enum = _ENUM_LITERAL.match(text)
    if enum:
        return enum.group(1)
    if GUID.match(text):
        return text.lower()
    try:
        return int(text)
    except ValueError:
        raise failures.query(f"Syntax error: '{text}' is not a valid literal.") from None
