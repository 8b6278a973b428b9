"""Tokens of ``$filter``/``$orderby`` text, following the OData library's lexer.

The whole text is tokenized before parsing, as the service does, so a lexical error (for example
an unterminated literal) is reported even when a syntax error comes earlier.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from emulators.dataverse.query.errors import QueryError, invalid_character, syntax_error


class Kind(Enum):
    IDENTIFIER = "identifier"
    ALIAS = "alias"
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DOUBLE = "double"
    GUID = "guid"
    DATETIME = "datetime"
    DATE = "date"
    BRACKET = "bracket"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    EQUALS = "="
    SLASH = "/"
    COLON = ":"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    position: int
    value: Any = None


_GUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}(?![\w.-])")
_DATE = re.compile(
    r"(\d{4}-\d{2}-\d{2})"
    r"(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:\d{2})?)?(?![\w.:-])"
)
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*")
_WHITESPACE = " \t\r\n"
_PUNCTUATION = {
    "(": Kind.OPEN,
    ")": Kind.CLOSE,
    ",": Kind.COMMA,
    "=": Kind.EQUALS,
    "/": Kind.SLASH,
    ":": Kind.COLON,
}
_INT32 = 2**31


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    length = len(text)
    while True:
        while position < length and text[position] in _WHITESPACE:
            position += 1
        if position >= length:
            tokens.append(Token(Kind.END, "", length))
            return tokens
        token = _next_token(text, position)
        tokens.append(token)
        position += len(token.text)


def _next_token(text: str, start: int) -> Token:
    char = text[start]
    if char in _PUNCTUATION:
        return Token(_PUNCTUATION[char], char, start)
    if char == "'":
        return _string(text, start)
    if char == "[":
        return _bracket(text, start)
    if char == "@":
        match = _IDENTIFIER.match(text, start + 1)
        if match is None:
            raise syntax_error(start, text)
        return Token(Kind.ALIAS, "@" + match.group(), start, match.group())
    if guid := _GUID.match(text, start):
        return Token(Kind.GUID, guid.group(), start, guid.group().lower())
    if char.isdigit() and (date := _DATE.match(text, start)):
        return _date(text, start, date)
    if char.isdigit() or (char == "-" and text[start + 1 : start + 2].isdigit()):
        return _number(text, start)
    if identifier := _IDENTIFIER.match(text, start):
        return Token(Kind.IDENTIFIER, identifier.group(), start)
    raise invalid_character(char, start, text)


def _string(text: str, start: int) -> Token:
    position = start + 1
    parts: list[str] = []
    while True:
        end = text.find("'", position)
        if end < 0:
            raise QueryError(
                f"There is an unterminated literal at position {len(text)} in '{text}'."
            )
        parts.append(text[position:end])
        if text.startswith("'", end + 1):
            parts.append("'")
            position = end + 2
            continue
        return Token(Kind.STRING, text[start : end + 1], start, "".join(parts))


def _bracket(text: str, start: int) -> Token:
    # Only double quotes are tracked, like the service: a single-quoted item holding a quote is
    # left for the JSON reader to reject. Jumps from one significant character to the next (an
    # In list of a thousand addresses is tens of thousands of characters).
    depth = 0
    position = start
    in_string = False
    while (match := _BRACKET_SIGNIFICANT.search(text, position)) is not None:
        char, position = match.group(), match.start()
        if in_string:
            if char == "\\":
                position += 2
                continue
            if char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                raw = text[start : position + 1]
                return Token(Kind.BRACKET, raw, start, raw)
        position += 1
    raise QueryError("Found an unbalanced bracket expression.")


_BRACKET_SIGNIFICANT = re.compile(r'[\\"\[\]]')


def _number(text: str, start: int) -> Token:
    match = _NUMBER.match(text, start)
    assert match is not None
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "_."):
        raise syntax_error(start, text)
    raw = match.group()
    if match.group(2):
        return Token(Kind.DOUBLE, raw, start, float(raw))
    if match.group(1):
        return Token(Kind.DECIMAL, raw, start, Decimal(raw))
    value = int(raw)
    return Token(Kind.INTEGER, raw, start, value)


def _date(text: str, start: int, match: re.Match[str]) -> Token:
    raw = match.group()
    day, time, zone = match.group(1), match.group(2), match.group(3)
    try:
        if time is None:
            return Token(Kind.DATE, raw, start, dt.date.fromisoformat(day))
        if zone is None:
            raise QueryError(
                f"The time zone information is missing on the DateTimeOffset value '{raw}'. "
                "A DateTimeOffset value must contain the time zone information."
            )
        return Token(Kind.DATETIME, raw, start, parse_datetime(raw))
    except ValueError:
        kind = "Edm.Date" if time is None else "Edm.DateTimeOffset"
        raise QueryError(
            f"Unrecognized '{kind}' literal '{raw}' at '{start}' in '{text}'."
        ) from None


def parse_datetime(raw: str) -> dt.datetime:
    """An aware UTC datetime from ISO 8601 text (fractions beyond microseconds are cut)."""
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        value = _parse_long_fraction(raw)
    if value.tzinfo is dt.UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _parse_long_fraction(raw: str) -> dt.datetime:
    body, dot, rest = raw.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        raw = f"{body}.{rest[: min(digits, 6)]}{rest[digits:]}"
    return dt.datetime.fromisoformat(raw.replace("z", "Z"))


def is_int32(value: int) -> bool:
    return -_INT32 <= value < _INT32
