"""The In-list reader's fast path reads exactly what the service's reader would."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.dataverse.query.errors import QueryError
from emulators.dataverse.query.lexer import Kind, tokenize
from emulators.dataverse.query.values import _JsonArrayReader, parse_json_array


@settings(max_examples=300)
@given(st.lists(st.text(), max_size=20), st.booleans())
def test_a_json_array_of_strings_reads_as_the_reader_reads_it(
    items: list[str], ascii_only: bool
) -> None:
    text = json.dumps(items, ensure_ascii=ascii_only)
    assert parse_json_array(text) == items
    if not ascii_only:
        # (With \u escapes the reader keeps a surrogate pair as two halves; the fast path joins
        # them into the one character the service reads, so only unescaped text is compared.)
        assert _JsonArrayReader(text).read() == items


@pytest.mark.parametrize("text", ["['a@x.org','b@x.org']", '["a", 1]', '["a", null]'])
def test_what_the_fast_path_does_not_take_is_read_by_the_reader(text: str) -> None:
    assert parse_json_array(text) == _JsonArrayReader(text).read()


def test_a_bracket_ends_at_its_own_closing_bracket_not_one_inside_a_string() -> None:
    source = 'Microsoft.Dynamics.CRM.In(PropertyName=\'x\',PropertyValues=["a]\\"[b", "c"])'
    brackets = [token for token in tokenize(source) if token.kind is Kind.BRACKET]
    assert [token.text for token in brackets] == ['["a]\\"[b", "c"]']


def test_an_unbalanced_bracket_is_refused() -> None:
    with pytest.raises(QueryError, match="unbalanced bracket"):
        tokenize('x eq ["a", "b"')
