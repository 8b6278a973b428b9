"""Strict access to a decoded JSON object's fields, with errors that name the field (never its
value: message bodies hold email addresses)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.errors import MessageFormatError


class JsonFields:
    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        self.label = label
        self._values = values

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def _get(self, name: str) -> Any:
        if name not in self._values:
            raise MessageFormatError(f"{self.label}: missing field '{name}'")
        return self._values[name]

    def _wrong(self, name: str, expected: str) -> MessageFormatError:
        return MessageFormatError(f"{self.label}: field '{name}' must be {expected}")

    def text(self, name: str, *, required: bool = False) -> str:
        value = self._get(name)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self._wrong(name, "a non-empty string" if required else "a string")
        return value

    def integer(self, name: str) -> int:
        value = self._get(name)
        if not _is_int(value) or value < 0:
            raise self._wrong(name, "a non-negative integer")
        return int(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self._values.get(name, default)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false")
        return value

    def timestamp(self, name: str) -> datetime:
        value = self._get(name)
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise self._wrong(name, "an ISO 8601 date-time with a time zone")
        return parsed

    def array(self, name: str) -> list[Any]:
        value = self._get(name)
        if not isinstance(value, list):
            raise self._wrong(name, "a list")
        return value

    def nested(self, label: str, value: Any) -> JsonFields:
        if not isinstance(value, dict):
            raise MessageFormatError(f"{self.label}: {label} must be an object")
        return JsonFields(f"{self.label} {label}", value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
