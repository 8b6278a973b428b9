"""What a Web API URL addresses, and what the ``Prefer`` header asks for.

The resource path is everything after ``/api/data/v9.x/``: ``contacts``, ``contacts(<guid>)``,
``contacts(<guid>)/emailaddress1``, ``contacts/$count``,
``contacts/Microsoft.Dynamics.CRM.UpdateMultiple``, ``WhoAmI``, ``$batch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from emulators.dataverse import errors
from emulators.dataverse.payload import parse_key
from emulators.http import Headers

MAX_PAGE_SIZE = 5000
ACTION_PREFIX = "Microsoft.Dynamics.CRM."
_SEGMENT = re.compile(r"^(?P<name>[^()/]+)(?:\((?P<key>[^)]*)\))?$")


@dataclass(frozen=True)
class Resource:
    entity_set: str
    key: str | None = None  # canonical GUID of ``set(<guid>)``
    property: str | None = None  # ``set(<guid>)/<property>``
    ref: bool = False  # ``.../<navigation property>/$ref``
    count: bool = False  # ``set/$count``
    action: str | None = None  # ``set/Microsoft.Dynamics.CRM.<action>``


def parse_resource(raw_path: str) -> Resource:
    """``raw_path`` is still percent-encoded; it is decoded once here."""
    segments = unquote(raw_path).split("/")
    head = _SEGMENT.match(segments[0])
    if head is None:
        raise errors.segment_not_found(segments[0])
    entity_set, raw_key = head.group("name"), head.group("key")
    key = None
    if raw_key is not None:
        key = parse_key(raw_key)
        if key is None:
            raise errors.query_syntax()
    rest = segments[1:]
    if not rest:
        return Resource(entity_set, key)
    if key is None and len(rest) == 1 and rest[0] == "$count":
        return Resource(entity_set, count=True)
    if key is None and len(rest) == 1 and rest[0].startswith(ACTION_PREFIX):
        return Resource(entity_set, action=rest[0][len(ACTION_PREFIX):])
    if key is not None and len(rest) == 1 and rest[0]:
        return Resource(entity_set, key, property=rest[0])
    if key is not None and len(rest) == 2 and rest[1] == "$ref":
        return Resource(entity_set, key, property=rest[0], ref=True)
    raise errors.segment_not_found(rest[-1] or rest[0])


@dataclass(frozen=True)
class Preferences:
    return_representation: bool = False
    max_page_size: int | None = None
    continue_on_error: bool = False
    annotations: str | None = None

    @property
    def page_size(self) -> int:
        return min(self.max_page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)


def parse_preferences(headers: Headers) -> Preferences:
    """Every ``Prefer`` header, each a comma-separated list (annotation lists are quoted)."""
    found: dict[str, str] = {}
    for header in headers.get_all("Prefer"):
        for item in _split_outside_quotes(header):
            name, _, value = item.strip().partition("=")
            found[name.strip().lower()] = value.strip()
    page_size = None
    if "odata.maxpagesize" in found:
        raw = found["odata.maxpagesize"]
        if not raw.isdigit() or int(raw) < 1:
            raise errors.DataverseError(
                400, "0x80060888",
                f"The value '{raw}' of the 'odata.maxpagesize' preference is not a positive "
                "number.",
            )
        page_size = int(raw)
    annotations = found.get("odata.include-annotations")
    return Preferences(
        return_representation=found.get("return") == "representation",
        max_page_size=page_size,
        continue_on_error="odata.continue-on-error" in found,
        annotations=annotations.strip('"') if annotations is not None else None,
    )


def _split_outside_quotes(text: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item for item in items if item.strip()]
