"""Column values as the engine compares them: one normal form per column type.

Row values are normalised per comparison (strings to their collation key or order form, GUIDs
lower-cased, date-times made aware UTC), and literals once per query, so a compiled filter only
does ``==``/``<``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from emulators.dataverse.query.collation import Collation
from emulators.dataverse.query.errors import QueryError
from emulators.dataverse.query.lexer import parse_datetime

Normalizer = Callable[[Any], Any]

_GUID_TEXT = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")
NUMERIC_TYPES = frozenset({"int", "bigint", "decimal", "money", "float", "choice"})
STRING_TYPES = frozenset({"string", "memo"})


def _guid(value: Any) -> str:
    return str(value).lower()


def _same(value: Any) -> Any:
    return value


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return parse_datetime(str(value))


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


_NORMALIZERS: dict[str, Normalizer] = {
    "guid": _guid,
    "bool": _same,
    "datetime": _datetime,
    "dateonly": _date,
    **{kind: _same for kind in NUMERIC_TYPES},
}


def normalizer(column_type: str, collation: Collation, *, ordered: bool = False) -> Normalizer:
    """The normal form for ``==`` (``ordered=False``) or for ``<`` and sorting (``True``).

    The two differ only for strings under an accent-sensitive collation.
    """
    if column_type in STRING_TYPES:
        return _string_normalizer(collation.order if ordered else collation.key)
    return _NORMALIZERS[column_type]


def _string_normalizer(key: Callable[[str], Any]) -> Normalizer:
    def collate(value: Any) -> Any:
        return key(value if isinstance(value, str) else str(value))

    return collate


def family(column_type: str) -> str:
    """Types within one family compare with each other (all numbers are one family)."""
    if column_type in NUMERIC_TYPES:
        return "number"
    if column_type in STRING_TYPES:
        return "string"
    return column_type


def value_from_text(text: str, column_type: str) -> Any:
    """A query-function value (always sent as a string) in the column's normal form; strings
    come back as they are, for the caller to collate.

    Raises:
        QueryError: the text is not a value of that type (.NET's parse messages).
    """
    try:
        if column_type in STRING_TYPES:
            return text
        if column_type == "guid":
            guid = text.strip().strip("{}").lower()
            if not _GUID_TEXT.fullmatch(guid):
                raise QueryError(
                    "Guid should contain 32 digits with 4 dashes "
                    "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
                )
            return guid
        if column_type in {"int", "bigint", "choice"}:
            return int(text.strip())
        if column_type in {"decimal", "money"}:
            return Decimal(text.strip())
        if column_type == "float":
            return float(text.strip())
        if column_type == "bool":
            lowered = text.strip().lower()
            if lowered in {"true", "1"}:
                return True
            if lowered in {"false", "0"}:
                return False
            raise ValueError(text)
        if column_type == "datetime":
            return _datetime(text.strip())
        return dt.date.fromisoformat(text.strip())
    except (ValueError, InvalidOperation):
        raise QueryError("Input string was not in a correct format.") from None


def value_to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _JsonArrayReader:
    """The OData library's lenient JSON reader, cut down to one flat array of scalars.

    It accepts single- and double-quoted strings, which is why a single-quoted item that holds
    a quote fails with the "comma expected" message rather than a quoting error.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def read(self) -> list[Any]:
        self._skip_whitespace()
        self._expect("[")
        items: list[Any] = []
        self._skip_whitespace()
        if self._peek() == "]":
            self.position += 1
            return self._end(items)
        while True:
            self._skip_whitespace()
            if self._peek() == ",":
                raise QueryError(
                    "Invalid JSON. An unexpected comma was found in scope 'Array'. A comma is "
                    "only valid between properties of an object or between elements of an array."
                )
            items.append(self._value())
            self._skip_whitespace()
            char = self._peek()
            if char == ",":
                self.position += 1
                self._skip_whitespace()
                if self._peek() == "]":
                    raise QueryError(
                        "Invalid JSON. An unexpected comma was found in scope 'Array'. A comma is "
                        "only valid between properties of an object or between elements of an "
                        "array."
                    )
                continue
            if char == "]":
                self.position += 1
                return self._end(items)
            if char == "":
                raise QueryError(
                    "Invalid JSON. Unexpected end of input was found in JSON content. Not all "
                    "object and array scopes were closed."
                )
            raise QueryError(
                "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two "
                "elements in an array and properties of an object must be separated by commas."
            )

    def _end(self, items: list[Any]) -> list[Any]:
        self._skip_whitespace()
        if self.position != len(self.text):
            raise QueryError(
                "Invalid JSON. More than one value was found at the root of the JSON content. "
                "JSON content can only have one value at the root level, which is an array, an "
                "object or a primitive value."
            )
        return items

    def _value(self) -> Any:
        char = self._peek()
        if char in {'"', "'"}:
            return self._string(char)
        match = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null").match(
            self.text, self.position
        )
        if match is None:
            raise QueryError("Invalid JSON. A token was not recognized in the JSON content.")
        self.position = match.end()
        raw = match.group()
        return {"true": True, "false": False, "null": None}.get(raw, raw)

    def _string(self, quote: str) -> str:
        self.position += 1
        parts: list[str] = []
        escapes = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
        while self.position < len(self.text):
            char = self.text[self.position]
            self.position += 1
            if char == quote:
                return "".join(parts)
            if char != "\\":
                parts.append(char)
                continue
            escape = self.text[self.position : self.position + 1]
            self.position += 1
            if escape in escapes:
                parts.append(escapes[escape])
            elif escape in {'"', "'", "\\", "/"}:
                parts.append(escape)
            elif escape == "u" and re.fullmatch(
                r"[0-9A-Fa-f]{4}", self.text[self.position : self.position + 4]
            ):
                parts.append(chr(int(self.text[self.position : self.position + 4], 16)))
                self.position += 4
            else:
                raise QueryError(
                    f"Invalid JSON. An unrecognized escape sequence '\\{escape}' was found in a "
                    "JSON string value."
                )
        raise QueryError(
            "Invalid JSON. Unexpected end of input reached while processing a JSON string value."
        )

    def _peek(self) -> str:
        return self.text[self.position : self.position + 1]

    def _skip_whitespace(self) -> None:
        while self._peek() in {" ", "\t", "\r", "\n"} and self._peek():
            self.position += 1

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise QueryError("Invalid JSON. A token was not recognized in the JSON content.")
        self.position += 1


def parse_json_array(text: str) -> list[Any]:
    """The items of a ``PropertyValues`` array (strings, numbers, booleans or null)."""
    # The common case, an array of double-quoted strings, through the C decoder: what it
    # accepts as such, the reader below reads the same way. Anything else (single quotes, raw
    # control characters, numbers, errors) takes the reader, with the service's messages.
    try:
        items = json.loads(text)
    except ValueError:
        items = None
    if isinstance(items, list) and all(isinstance(item, str) for item in items):
        return items
    return _JsonArrayReader(text).read()
