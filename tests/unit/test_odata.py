"""OData building: escaping, encoding and URL budgets never change a query's meaning."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.dataverse import odata

AWKWARD = [
    "o'brien@example.com",
    "first+tag@example.com",
    "a&b@example.com",
    "hash#tag@example.com",
    "per%cent@example.com",
    'quo"te@example.com',
    "ünïcødé@exämple.com",
    ("x" * 290) + "@ex.com",
]


def test_string_literal_doubles_quotes() -> None:
    assert odata.string_literal("O'Bryan") == "'O''Bryan'"


def test_guid_literal_rejects_non_guids() -> None:
    assert odata.guid_literal("7A2C0000-0000-0000-0000-000000000001") == (
        "7a2c0000-0000-0000-0000-000000000001"
    )
    with pytest.raises(ValueError):
        odata.guid_literal("1) or (1 eq 1")


def test_query_string_round_trips_awkward_values_exactly() -> None:
    expression, aliases = odata.in_filter("emailaddress1", AWKWARD)
    text = odata.query_string([("$filter", expression), *aliases])
    assert "+" not in text and "&" not in text.replace("&@p", "").replace("&$", "")
    decoded = dict(parse_qsl(text))
    assert decoded["$filter"] == expression
    assert decoded["@p1"] == "'emailaddress1'"
    assert json.loads(decoded["@p2"]) == AWKWARD


def test_chunks_respect_count_and_url_budget() -> None:
    values = [f"user{i}@example.com" for i in range(1000)]
    chunks = list(odata.chunk_for_url(values, fixed_chars=200, max_values=250))
    assert [value for chunk in chunks for value in chunk] == values
    assert all(len(chunk) <= 250 for chunk in chunks)
    long_values = [("y" * 280) + f"{i}@ex.com" for i in range(400)]
    for chunk in odata.chunk_for_url(long_values, fixed_chars=200):
        encoded = odata.encode_value(json.dumps(chunk, ensure_ascii=False))
        assert 200 + len(encoded) <= odata.MAX_URL_CHARS


def test_a_value_too_long_for_any_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="too long"):
        list(odata.chunk_for_url(["z" * 40_000], fixed_chars=100))


@settings(max_examples=500)
@given(st.text())
def test_encoded_length_is_the_length_of_the_encoded_value(value: str) -> None:
    assert odata.encoded_length(value) == len(odata.encode_value(value))
