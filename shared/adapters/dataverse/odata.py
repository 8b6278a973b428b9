"""Safe OData query building for Dataverse: literals, ``In`` filters, encoding and URL budgets.

Every value placed in a query goes through here. String literals double ``'``; ``In`` values are
JSON strings (no doubling inside double quotes); every value is percent-encoded, so ``+``, ``&``,
``#`` and ``%`` in an email address can never change the query's meaning.
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Iterator, Sequence
from urllib.parse import quote

# The documented GET URL limit is 32,768 characters; stay well below it so headers, the host
# and future query options always fit.
MAX_URL_CHARS = 30_000
# Inside a $batch a part's request line may be twice as long (65,536); the same margin applies.
MAX_BATCH_URL_CHARS = 60_000
# Dataverse guidance: "a few hundred" values per In list.
MAX_IN_VALUES = 250


def string_literal(value: str) -> str:
    """An OData string literal: single quotes, embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def guid_literal(value: str) -> str:
    """A GUID literal (unquoted); raises ``ValueError`` for anything that is not a GUID."""
    return str(uuid.UUID(value))


# What ``quote`` leaves as it is: its always-safe characters plus the OData syntax we keep.
_SAFE_SYNTAX = "'()"
_READABLE = (string.ascii_letters + string.digits + "_.-~" + _SAFE_SYNTAX).encode()


def encode_value(value: str) -> str:
    """Percent-encode a query value; only OData syntax characters stay readable."""
    return quote(value, safe=_SAFE_SYNTAX)


def query_string(params: Sequence[tuple[str, str]]) -> str:
    """Build ``$select=...&$filter=...`` keeping ``$`` and ``@`` of option and alias names."""
    return "&".join(f"{quote(name, safe='$@')}={encode_value(value)}" for name, value in params)


def in_filter(column: str, values: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
    """``Microsoft.Dynamics.CRM.In`` with parameter aliases: (filter expression, alias params)."""
    expression = "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)"
    values_json = json.dumps(list(values), ensure_ascii=False)
    return expression, [("@p1", string_literal(column)), ("@p2", values_json)]


def encoded_length(value: str) -> int:
    """``len(encode_value(value))`` without building the string: every UTF-8 byte that is not
    left readable becomes three characters (``%XX``)."""
    raw = value.encode("utf-8")
    return len(raw) + 2 * len(raw.translate(None, _READABLE))


def _in_value_cost(value: str) -> int:
    """URL characters one value adds to an ``In`` list: its encoded JSON string plus json.dumps'
    ", " separator (an upper bound for the last)."""
    return encoded_length(json.dumps(value, ensure_ascii=False) + ", ")


def chunk_for_url(
    values: Sequence[str], *, fixed_chars: int, max_values: int = MAX_IN_VALUES,
    max_url_chars: int = MAX_URL_CHARS, costs: dict[str, int] | None = None,
) -> Iterator[list[str]]:
    """Split ``values`` so each ``In`` list fits the URL budget after encoding.

    ``fixed_chars`` is the length of everything else in the URL; ``costs`` remembers each value's
    encoded length for a caller that chunks the same values again. A single value that cannot fit
    on its own raises ``ValueError`` rather than producing a request the service would refuse.
    """
    budget = max_url_chars - fixed_chars
    brackets = len(encode_value("[]"))
    chunk: list[str] = []
    used = brackets
    known = {} if costs is None else costs
    for value in values:
        cost = known.get(value)
        if cost is None:
            cost = known[value] = _in_value_cost(value)
        if cost + brackets > budget:
            raise ValueError("a single lookup value is too long for a Dataverse query URL")
        if chunk and (used + cost > budget or len(chunk) >= max_values):
            yield chunk
            chunk, used = [], brackets
        chunk.append(value)
        used += cost
    if chunk:
        yield chunk
