"""The queue message codec: round trips, every undecodable input, v1 messages still in flight,
deterministic ids, sizing, and the dead-letter form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.servicebus import message_codec as codec
from shared.domain.commands import (
    MAX_BATCH_NUMBER,
    ApplyOptInBatch,
    BatchRef,
    OptInChange,
    UnreadableBatch,
)
from shared.errors import MessageFormatError
from shared.services.ports import MessageCodec, ReceivedMessage

REF = BatchRef(account="3f2504e0-4f89-11d3-9a0c-0305e82c3301", run_id="20261129T120000Z-a1",
               batch=3)


def a_batch(*items: OptInChange, batch: int = 3, dry_run: bool = False) -> ApplyOptInBatch:
    return ApplyOptInBatch(
        BatchRef(REF.account, REF.run_id, batch, dry_run),
        items or (OptInChange("Ann@Example.org", "Double"),),
    )


def body_of(*, version: int = 2, **changes: Any) -> bytes:
    body = json.loads(codec.encode(a_batch()).body)
    if version == 1:  # what the app before this one wrote: each item also has "modified"
        body["version"] = 1
        for item in body["items"]:
            item["modified"] = "2026-11-29T09:15:00Z"
    for name, value in changes.items():
        if value is ...:
            del body[name]
        else:
            body[name] = value
    return json.dumps(body).encode()


def item_body(**changes: Any) -> bytes:
    item = {"email": "a@example.org", "opt_in_type": "Single"}
    for name, value in changes.items():
        if value is ...:
            del item[name]
        else:
            item[name] = value
    return body_of(items=[item])


def v1_body(**changes: Any) -> bytes:
    """A version 1 body, as the app before this one wrote it: each item has ``modified``."""
    item = {"email": "a@example.org", "opt_in_type": "Single",
            "modified": "2026-11-29T09:15:00Z"}
    for name, value in changes.items():
        if value is ...:
            del item[name]
        else:
            item[name] = value
    return body_of(version=1, items=[item])


# --- round trips ----------------------------------------------------------------------------------
def test_an_optin_batch_round_trips() -> None:
    batch = a_batch(
        OptInChange("o'brien+news@example.org", "VerifiedDouble"),
        OptInChange("  Zoë@Exämple.org ", "Unknown"),
        dry_run=True,
    )
    outbound = codec.encode(batch)

    assert codec.decode(outbound.body) == batch
    assert codec.decode(outbound.body.decode()) == batch
    assert outbound.content_type == "application/json"
    assert outbound.session_id is None


def test_the_session_id_is_the_publishers_choice_when_encoding() -> None:
    outbound = codec.encode(a_batch(), session_id="optin-3")
    assert outbound.session_id == "optin-3"
    assert outbound.message_id == codec.encode(a_batch()).message_id  # not part of the identity


def test_the_envelope_names_schema_and_version_and_properties_carry_no_addresses() -> None:
    outbound = codec.encode(a_batch())
    body = json.loads(outbound.body)

    assert (body["schema"], body["version"]) == ("optin-batch", 2)
    assert body["items"] == [{"email": "Ann@Example.org", "opt_in_type": "Double"}]
    assert outbound.application_properties == {
        "schema": "optin-batch", "version": 2, "run_id": "20261129T120000Z-a1",
        "account": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "batch": 3, "items": 1,
        "dry_run": False,
    }


def test_the_properties_name_the_batch_even_when_the_body_cannot_be_read() -> None:
    outbound = codec.encode(a_batch(OptInChange("a@b.org", "Single"),
                                    OptInChange("c@d.org", "Double"), dry_run=True))

    unreadable = codec.unreadable_batch(outbound.application_properties)

    assert unreadable == UnreadableBatch(BatchRef(REF.account, REF.run_id, 3, True), items=2)


@pytest.mark.parametrize("change", [
    {"schema": "suppression-batch"}, {"schema": "timeline-batch"}, {"run_id": ""},
    {"account": 7}, {"batch": -1},
    {"batch": True}, {"batch": MAX_BATCH_NUMBER + 1}, {"items": -1}, {"items": "1"},
    {"dry_run": "false"}, {"dry_run": None},
])
def test_properties_that_do_not_name_a_batch_give_no_identity(change: dict[str, Any]) -> None:
    properties = {**codec.encode(a_batch()).application_properties, **change}
    assert codec.unreadable_batch(properties) is None
    assert codec.unreadable_batch(None) is None


def test_a_v1_message_still_decodes_and_its_modified_is_dropped_when_in_flight() -> None:
    decoded = codec.decode(v1_body(modified="2026-11-29T10:15:00+01:00"))
    assert decoded == ApplyOptInBatch(REF, (OptInChange("a@example.org", "Single"),))


def test_unknown_opt_in_types_and_odd_addresses_pass_through_for_the_applier_to_count() -> None:
    decoded = codec.decode(item_body(email="   ", opt_in_type="Triple"))
    assert decoded.items[0] == OptInChange("   ", "Triple")


def test_unknown_fields_are_ignored_and_dry_run_defaults_to_false() -> None:
    decoded = codec.decode(body_of(dry_run=..., added_later={"x": 1}))
    assert decoded == a_batch()
    # v2 items ignore a "modified" too: an unknown field to this version.
    assert codec.decode(item_body(modified="not a date")).items == (
        OptInChange("a@example.org", "Single"),)


emails = st.text(max_size=60)
changes = st.builds(
    OptInChange, email=emails, opt_in_type=st.sampled_from(
        ["Unknown", "Single", "Double", "VerifiedDouble", "", "other"]),
)


@given(items=st.lists(changes, max_size=20), batch=st.integers(0, 9_999_999),
       dry_run=st.booleans())
def test_any_batch_round_trips(items: list[OptInChange], batch: int, dry_run: bool) -> None:
    original = ApplyOptInBatch(BatchRef("acct-1", "run-1", batch, dry_run), tuple(items))
    assert codec.decode(codec.encode(original).body) == original


def test_the_codec_port_reads_what_the_publishers_write() -> None:
    port: MessageCodec = codec.JsonMessageCodec()
    outbound = codec.encode(a_batch())
    assert port.decode_optin(outbound.body) == a_batch()
    assert port.unreadable(outbound.application_properties) == UnreadableBatch(REF, 1)
    assert port.unreadable({"schema": "other"}) is None


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
    (b'{"schema": "timeline-batch", "version": 1}', "unknown message schema"),
    (b'{"schema": "optin-batch", "version": 3}', r"unknown version 3 of optin-batch .*\[1, 2\]"),
    (b'{"schema": "optin-batch", "version": 0}', r"unknown version 0 of optin-batch"),
])
def test_undecodable_envelopes(body: bytes, message: str) -> None:
    with pytest.raises(MessageFormatError, match=message):
        codec.decode(body)
    with pytest.raises(MessageFormatError, match=message):  # the port says the same
        codec.JsonMessageCodec().decode_optin(body)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("changes, message", [
    ({"run_id": ...}, "missing field 'run_id'"),
    ({"run_id": ""}, "'run_id' must be a non-empty string"),
    ({"run_id": 7}, "'run_id' must be a non-empty string"),
    ({"run_id": "r" * 65}, "run_id must be a non-empty string of at most 64"),
    # Ids the state store could not key are refused before anything is written for them.
    ({"run_id": "run/../x"}, "run_id must be a non-empty string of at most 64 letters"),
    ({"account": "acct 1#"}, "account must be a non-empty string of at most 100 letters"),
    ({"account": ...}, "missing field 'account'"),
    ({"account": None}, "'account' must be a non-empty string"),
    ({"batch": ...}, "missing field 'batch'"),
    ({"batch": -1}, "'batch' must be a non-negative integer"),
    ({"batch": 1.0}, "'batch' must be a non-negative integer"),
    ({"batch": True}, "'batch' must be a non-negative integer"),
    ({"batch": 10_000_000}, r"batch must be an integer in 0\.\.9999999"),
    ({"dry_run": "no"}, "'dry_run' must be true or false"),
    ({"items": ...}, "missing field 'items'"),
    ({"items": {"email": "a@b.c"}}, "'items' must be a list"),
    ({"items": ["a@b.c"]}, r"items\[0\] must be an object"),
])
def test_missing_and_ill_typed_batch_fields(
    changes: dict[str, Any], message: str, version: int
) -> None:
    with pytest.raises(MessageFormatError, match=message):
        codec.decode(body_of(version=version, **changes))


@pytest.mark.parametrize("changes, message", [
    ({"email": ...}, r"items\[0\]: missing field 'email'"),
    ({"email": None}, r"items\[0\]: field 'email' must be a string"),
    ({"opt_in_type": 2}, "'opt_in_type' must be a string"),
])
def test_missing_and_ill_typed_item_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MessageFormatError, match=message):
        codec.decode(item_body(**changes))
    with pytest.raises(MessageFormatError, match=message):
        codec.decode(v1_body(**changes))


@pytest.mark.parametrize("changes, message", [
    ({"modified": ...}, "missing field 'modified'"),
    ({"modified": "2026-11-29T09:15:00"}, "'modified' must be an ISO 8601 date-time with a time"),
    ({"modified": "yesterday"}, "'modified' must be an ISO 8601"),
    ({"modified": 1764407700}, "'modified' must be an ISO 8601"),
])
def test_a_v1_item_still_needs_a_valid_modified_when_decoded(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(MessageFormatError, match=message):
        codec.decode(v1_body(**changes))


def test_errors_never_quote_an_address() -> None:
    with pytest.raises(MessageFormatError) as caught:
        codec.decode(v1_body(email="secret.person@example.org", modified="soon"))
    assert "secret.person" not in str(caught.value)
    with pytest.raises(MessageFormatError) as caught:
        codec.decode(item_body(email="secret.person@example.org", opt_in_type=None))
    assert "secret.person" not in str(caught.value)


# --- message ids ----------------------------------------------------------------------------------
def test_a_republished_batch_has_the_same_id_whatever_its_content() -> None:
    first = codec.encode(a_batch())
    again = codec.encode(a_batch(OptInChange("b@example.org", "Single")))
    assert first.message_id == again.message_id
    assert first.message_id == codec.message_id_for("optin-batch", REF)
    assert first.message_id.startswith("optin-batch-") and len(first.message_id) <= 128


def test_ids_differ_by_schema_account_run_and_batch() -> None:
    variants = [("optin-batch", "acct", "run", 1), ("other-batch", "acct", "run", 1),
                ("optin-batch", "acct2", "run", 1), ("optin-batch", "acct", "run2", 1),
                ("optin-batch", "acct", "run", 2), ("optin-batch", "acc", "trun", 1),
                ("optin-batch", "acct", "run1", 1)]
    ids = {codec.message_id_for(schema, BatchRef(account, run_id, batch))
           for schema, account, run_id, batch in variants}
    assert len(ids) == len(variants)
    # A dry run of the same batch is the same message: the dry run is under its own run id.
    assert codec.message_id_for("optin-batch", BatchRef("acct", "run", 1, True)) in ids


@pytest.mark.parametrize("account, run_id, batch", [
    ("", "run", 0), ("acct", " ", 0), ("acct", "run", -1), ("acct", "run", True),
    ("a" * 101, "run", 0), ("acct", "r" * 101, 0), ("acct", "run", 10_000_000),
    ("acct", "run", 1.0), (None, "run", 0),
])
def test_a_batch_ref_refuses_bad_identities_so_none_is_ever_encoded(
    account: Any, run_id: Any, batch: Any
) -> None:
    with pytest.raises(ValueError):
        BatchRef(account, run_id, batch)


@pytest.mark.parametrize("dry_run", ["false", None, 0])
def test_a_batch_ref_refuses_a_dry_run_that_is_not_a_bool(dry_run: Any) -> None:
    with pytest.raises(ValueError, match="dry_run"):
        BatchRef("acct", "run", 0, dry_run)


# --- sizing ---------------------------------------------------------------------------------------
def test_groups_stay_under_the_size_limit_and_keep_order() -> None:
    changes = [OptInChange(f"{'x' * (i % 200)}{i}@example.org", "Double") for i in range(3000)]

    groups = list(codec.fit_items(changes, max_items=1200, max_body_bytes=64 * 1024))

    assert [c for group in groups for c in group] == changes
    for number, group in enumerate(groups):
        body = codec.encode(ApplyOptInBatch(BatchRef("acct-1", "run-1", number), group)).body
        assert len(body) <= 64 * 1024
    assert len(groups) > 3000 // 1000  # the limit, not the item cap, split them
    assert groups == list(codec.fit_items(changes, max_items=1200,
                                                  max_body_bytes=64 * 1024))


def test_groups_respect_the_item_cap() -> None:
    changes = [OptInChange(f"{i}@e.org", "Single") for i in range(25)]
    assert [len(c) for c in codec.fit_items(changes, max_items=10)] == [10, 10, 5]
    assert list(codec.fit_items([], max_items=10)) == []


def test_a_full_size_batch_of_the_readers_cap_fits_one_message() -> None:
    long = [OptInChange(f"{'y' * 120}{i}@example.org", "VerifiedDouble") for i in range(1200)]
    groups = list(codec.fit_items(long, max_items=1200))
    for number, group in enumerate(groups):
        # The longest ids a batch may carry.
        encoded = codec.encode(ApplyOptInBatch(BatchRef("a" * 100, "r" * 64, number), group))
        assert len(encoded.body) <= codec.DEFAULT_MAX_BODY_BYTES
    assert sum(map(len, groups)) == 1200


def test_a_change_too_large_for_any_message_is_refused() -> None:
    huge = OptInChange("x" * 5000, "Single")
    with pytest.raises(MessageFormatError, match="larger than a message"):
        list(codec.fit_items([huge], max_items=10, max_body_bytes=4096))


# --- dead letters ---------------------------------------------------------------------------------
def test_the_dead_letter_queue_sits_beside_its_queue() -> None:
    assert codec.dead_letter_queue("optin-batches") == "optin-batches-deadletter"


def test_a_dead_letter_keeps_the_message_as_received_with_its_reason() -> None:
    outbound = codec.encode(a_batch(), session_id="optin-4")
    received = ReceivedMessage(
        message_id=outbound.message_id, body=outbound.body,
        application_properties={**outbound.application_properties, "not-sendable": [1]},
        session_id=outbound.session_id, delivery_count=2,
    )

    parked = codec.dead_letter_message(received, reason="BadRequest",
                                       description="dataverse HTTP 400: bad column")

    assert (parked.message_id, parked.body, parked.content_type) == (
        outbound.message_id, outbound.body, "application/json")
    assert parked.session_id is None  # the dead-letter queue has no sessions
    assert parked.application_properties == {
        **outbound.application_properties,
        "DeadLetterReason": "BadRequest",
        "DeadLetterErrorDescription": "dataverse HTTP 400: bad column",
        "DeliveryCount": 2, "SessionId": "optin-4",
    }
    # Replayed, it still names its batch.
    assert codec.unreadable_batch(parked.application_properties) == UnreadableBatch(REF, 1)


def test_a_dead_letters_reason_and_description_are_cut_to_service_bus_limits() -> None:
    received = ReceivedMessage("m-1", b"{", {}, None, 1)
    parked = codec.dead_letter_message(received, reason="R" * 500, description="D" * 5000)
    assert len(str(parked.application_properties["DeadLetterReason"])) == 200
    assert len(str(parked.application_properties["DeadLetterErrorDescription"])) == 1000
    assert "SessionId" not in parked.application_properties
