"""The queue message schema: round trips, every undecodable input, deterministic ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.entrypoints import messages
from shared.entrypoints.messages import OptInBatch, OptInChange
from shared.errors import MessageFormatError

MODIFIED = datetime(2026, 11, 29, 9, 15, 0, 250000, tzinfo=UTC)


def a_batch(*items: OptInChange, batch: int = 3, dry_run: bool = False) -> OptInBatch:
    return OptInBatch(
        run_id="20261129T120000Z-a1", account="3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        batch=batch, items=items or (OptInChange("Ann@Example.org", "Double", MODIFIED),),
        dry_run=dry_run,
    )


def body_of(**changes: Any) -> bytes:
    body = json.loads(messages.encode(a_batch()).body)
    for name, value in changes.items():
        if value is ...:
            del body[name]
        else:
            body[name] = value
    return json.dumps(body).encode()


def item_body(**changes: Any) -> bytes:
    item = {"email": "a@example.org", "opt_in_type": "Single", "modified": "2026-11-29T09:15:00Z"}
    for name, value in changes.items():
        if value is ...:
            del item[name]
        else:
            item[name] = value
    return body_of(items=[item])


# --- round trips ----------------------------------------------------------------------------------
def test_an_optin_batch_round_trips() -> None:
    batch = a_batch(
        OptInChange("o'brien+news@example.org", "VerifiedDouble", MODIFIED),
        OptInChange("  Zoë@Exämple.org ", "Unknown", MODIFIED + timedelta(days=1)),
        dry_run=True,
    )
    outbound = messages.encode(batch)

    assert messages.decode(outbound.body) == batch
    assert messages.decode_as(OptInBatch, outbound.body.decode()) == batch
    assert outbound.content_type == "application/json"


def test_the_envelope_names_schema_and_version_and_properties_carry_no_addresses() -> None:
    outbound = messages.encode(a_batch())
    body = json.loads(outbound.body)

    assert (body["schema"], body["version"]) == ("optin-batch", 1)
    assert body["items"][0]["modified"] == "2026-11-29T09:15:00.250000Z"
    assert outbound.application_properties == {
        "schema": "optin-batch", "version": 1, "run_id": "20261129T120000Z-a1",
        "account": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "batch": 3, "items": 1,
        "dry_run": False,
    }


def test_the_properties_name_the_batch_even_when_the_body_cannot_be_read() -> None:
    outbound = messages.encode(a_batch())

    identity = messages.batch_identity(outbound.application_properties)

    assert identity == messages.BatchIdentity(
        account="3f2504e0-4f89-11d3-9a0c-0305e82c3301", run_id="20261129T120000Z-a1", batch=3,
        items=1, dry_run=False,
    )


@pytest.mark.parametrize("change", [
    {"schema": "suppression-batch"}, {"run_id": ""}, {"account": 7}, {"batch": -1},
    {"batch": True}, {"batch": messages.MAX_BATCH_NUMBER + 1}, {"items": -1}, {"items": "1"},
    {"dry_run": "false"}, {"dry_run": None},
])
def test_properties_that_do_not_name_a_batch_give_no_identity(change: dict[str, Any]) -> None:
    properties = {**messages.encode(a_batch()).application_properties, **change}
    assert messages.batch_identity(properties) is None
    assert messages.batch_identity(None) is None


def test_times_in_other_zones_decode_as_the_same_instant_in_utc() -> None:
    decoded = messages.decode(item_body(modified="2026-11-29T10:15:00+01:00"))
    assert decoded.items[0].modified == datetime(2026, 11, 29, 9, 15, tzinfo=UTC)
    assert decoded.items[0].modified.tzinfo == UTC


def test_unknown_opt_in_types_and_odd_addresses_pass_through_for_the_applier_to_count() -> None:
    decoded = messages.decode(item_body(email="   ", opt_in_type="Triple"))
    assert decoded.items[0] == OptInChange("   ", "Triple", datetime(2026, 11, 29, 9, 15,
                                                                   tzinfo=UTC))


def test_unknown_fields_are_ignored_and_dry_run_defaults_to_false() -> None:
    decoded = messages.decode(body_of(dry_run=..., added_later={"x": 1}))
    assert decoded == a_batch()


emails = st.text(max_size=60)
changes = st.builds(
    OptInChange, email=emails, opt_in_type=st.sampled_from(
        ["Unknown", "Single", "Double", "VerifiedDouble", "", "other"]),
    modified=st.datetimes(timezones=st.just(UTC)),
)


@given(items=st.lists(changes, max_size=20), batch=st.integers(0, 9_999_999),
       dry_run=st.booleans())
def test_any_batch_round_trips(items: list[OptInChange], batch: int, dry_run: bool) -> None:
    original = OptInBatch("run-1", "acct-1", batch, tuple(items), dry_run)
    assert messages.decode(messages.encode(original).body) == original


# --- undecodable input ----------------------------------------------------------------------------
@pytest.mark.parametrize("body, message", [
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"", "not JSON"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'"optin-batch"', "not a JSON object"),
    (b"{}", "no 'schema'"),
    (b'{"schema": 1, "version": 1}', "no 'schema'"),
    (b'{"schema": "optin-batch"}', "no integer 'version'"),
    (b'{"schema": "optin-batch", "version": "1"}', "no integer 'version'"),
    (b'{"schema": "optin-batch", "version": true}', "no integer 'version'"),
    (b'{"schema": "suppression-batch", "version": 1}', "unknown message schema"),
    (b'{"schema": "optin-batch", "version": 2}', r"unknown version 2 of optin-batch .*\[1\]"),
])
def test_undecodable_envelopes(body: bytes, message: str) -> None:
    with pytest.raises(MessageFormatError, match=message):
        messages.decode(body)


@pytest.mark.parametrize("changes, message", [
    ({"run_id": ...}, "missing field 'run_id'"),
    ({"run_id": ""}, "'run_id' must be a non-empty string"),
    ({"run_id": 7}, "'run_id' must be a non-empty string"),
    ({"account": ...}, "missing field 'account'"),
    ({"account": None}, "'account' must be a non-empty string"),
    ({"batch": ...}, "missing field 'batch'"),
    ({"batch": -1}, "'batch' must be a non-negative integer"),
    ({"batch": 1.0}, "'batch' must be a non-negative integer"),
    ({"batch": True}, "'batch' must be a non-negative integer"),
    ({"batch": 10_000_000}, "'batch' is out of range"),
    ({"dry_run": "no"}, "'dry_run' must be true or false"),
    ({"items": ...}, "missing field 'items'"),
    ({"items": {"email": "a@b.c"}}, "'items' must be a list"),
    ({"items": ["a@b.c"]}, r"items\[0\] must be an object"),
])
def test_missing_and_ill_typed_batch_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MessageFormatError, match=message):
        messages.decode(body_of(**changes))


@pytest.mark.parametrize("changes, message", [
    ({"email": ...}, r"items\[0\]: missing field 'email'"),
    ({"email": None}, r"items\[0\]: field 'email' must be a string"),
    ({"opt_in_type": 2}, "'opt_in_type' must be a string"),
    ({"modified": ...}, "missing field 'modified'"),
    ({"modified": "2026-11-29T09:15:00"}, "'modified' must be an ISO 8601 date-time with a time"),
    ({"modified": "yesterday"}, "'modified' must be an ISO 8601"),
    ({"modified": 1764407700}, "'modified' must be an ISO 8601"),
])
def test_missing_and_ill_typed_item_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MessageFormatError, match=message):
        messages.decode(item_body(**changes))


def test_errors_never_quote_an_address() -> None:
    with pytest.raises(MessageFormatError) as caught:
        messages.decode(item_body(email="secret.person@example.org", modified="soon"))
    assert "secret.person" not in str(caught.value)


def test_a_queue_of_one_schema_refuses_another() -> None:
    class OtherBatch(OptInBatch):
        SCHEMA = "other-batch"

    with pytest.raises(MessageFormatError, match="expected a other-batch message"):
        messages.decode_as(OtherBatch, messages.encode(a_batch()).body)


# --- message ids ----------------------------------------------------------------------------------
def test_a_republished_batch_has_the_same_id_whatever_its_content() -> None:
    first = messages.encode(a_batch())
    again = messages.encode(a_batch(OptInChange("b@example.org", "Single", MODIFIED)))
    assert first.message_id == again.message_id
    assert first.message_id == messages.message_id_for(
        "optin-batch", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "20261129T120000Z-a1", 3)
    assert first.message_id.startswith("optin-batch-") and len(first.message_id) <= 128


def test_ids_differ_by_schema_account_run_and_batch() -> None:
    base = ("optin-batch", "acct", "run", 1)
    variants = [base, ("other-batch", "acct", "run", 1), ("optin-batch", "acct2", "run", 1),
                ("optin-batch", "acct", "run2", 1), ("optin-batch", "acct", "run", 2),
                ("optin-batch", "acc", "trun", 1), ("optin-batch", "acct", "run1", 1)]
    ids = {messages.message_id_for(*variant) for variant in variants}
    assert len(ids) == len(variants)


@pytest.mark.parametrize("account, run_id, batch", [
    ("", "run", 0), ("acct", " ", 0), ("acct", "run", -1), ("acct", "run", True),
    ("a" * 101, "run", 0), ("acct", "run", 10_000_000),
])
def test_ids_and_encoding_refuse_bad_identities(account: str, run_id: str, batch: int) -> None:
    with pytest.raises(ValueError):
        messages.message_id_for("optin-batch", account, run_id, batch)
    with pytest.raises(ValueError):
        messages.encode(OptInBatch(run_id, account, batch, ()))


def test_encoding_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        messages.encode(a_batch(OptInChange("a@example.org", "Single", datetime(2026, 1, 1))))


# --- sizing ---------------------------------------------------------------------------------------
def test_chunks_stay_under_the_size_limit_and_keep_order() -> None:
    paris = timezone(timedelta(hours=1))
    changes = [OptInChange(f"{'x' * (i % 200)}{i}@example.org", "Double",
                           datetime(2026, 11, 1, tzinfo=paris)) for i in range(3000)]

    chunks = list(messages.chunk_optin_changes(changes, max_body_bytes=64 * 1024))

    assert [c for chunk in chunks for c in chunk] == changes
    for number, chunk in enumerate(chunks):
        body = messages.encode(OptInBatch("run-1", "acct-1", number, chunk)).body
        assert len(body) <= 64 * 1024
    assert len(chunks) > 3000 // 1000  # the limit, not the item cap, split them
    assert chunks == list(messages.chunk_optin_changes(changes, max_body_bytes=64 * 1024))


def test_chunks_respect_the_item_cap() -> None:
    changes = [OptInChange(f"{i}@e.org", "Single", MODIFIED) for i in range(25)]
    assert [len(c) for c in messages.chunk_optin_changes(changes, max_items=10)] == [10, 10, 5]
    assert list(messages.chunk_optin_changes([])) == []


def test_a_change_too_large_for_any_message_is_refused() -> None:
    huge = OptInChange("x" * 5000, "Single", MODIFIED)
    with pytest.raises(MessageFormatError, match="larger than a message"):
        list(messages.chunk_optin_changes([huge], max_body_bytes=4096))
