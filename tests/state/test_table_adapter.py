"""What only the Table Storage adapter does: its row layout, lazy tables, and error mapping."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ServiceRequestError,
)
from azure.data.tables import TableClient, TableServiceClient

from devtools.azurite import ACCOUNT_NAME, AzuriteHandle
from shared.adapters.storage.errors import table_error
from shared.adapters.storage.sync_state import TableSyncStateStore
from shared.config import StateSettings
from shared.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    NotFound,
    PreconditionFailed,
    System,
    TransientError,
)
from shared.services.ports import PageCursor, SyncKey

KEY = SyncKey("acct-1", "ContactOptIn")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def table_names(azurite: AzuriteHandle) -> set[str]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    return {table.name for table in service.list_tables()}


def test_the_table_is_created_on_first_use_not_on_construction(
    azurite: AzuriteHandle,
) -> None:
    store = TableSyncStateStore.from_settings(
        StateSettings(connection_string=azurite.connection_string), table_name="lazytable"
    )
    assert "lazytable" not in table_names(azurite)

    assert store.get_watermark(KEY) is None
    assert "lazytable" in table_names(azurite)


def test_rows_follow_the_documented_layout(table_client: TableClient) -> None:
    store = TableSyncStateStore(table_client)
    store.advance_watermark(KEY, T0, etag=None)
    cursor = PageCursor("r-1", T0, T0 + timedelta(hours=1), "m-2", 2, 5)
    store.save_checkpoint(KEY, cursor, etag=None)
    store.start_run(KEY, "r-1", since=T0, until=T0 + timedelta(hours=1))
    store.record_published(KEY, "r-1", batches=1, done=True)
    store.mark_batch_applied(KEY, "r-1", 0, {"changed": 3})

    rows = {row["RowKey"]: row for row in table_client.query_entities(
        "PartitionKey eq @pk", parameters={"pk": "acct-1|ContactOptIn"})}
    assert set(rows) == {"watermark", "checkpoint|readcursor", "run|r-1", "run|r-1|batch|0000000"}
    assert rows["watermark"]["Value"] == T0
    assert rows["checkpoint|readcursor"]["marker"] == "m-2"
    assert rows["checkpoint|readcursor"]["pages_read"].value == 2
    header = rows["run|r-1"]
    assert header["Status"] == "completed" and header["n_changed"].value == 3
    assert header["BatchesPublished"].value == header["BatchesApplied"].value == 1
    assert rows["run|r-1|batch|0000000"]["n_changed"].value == 3


def test_a_stored_checkpoint_that_no_longer_fits_its_type_is_a_bad_request(
    table_client: TableClient,
) -> None:
    store = TableSyncStateStore(table_client)
    store.get_watermark(KEY)  # creates the table
    table_client.create_entity({"PartitionKey": "acct-1|ContactOptIn",
                                "RowKey": "checkpoint|readcursor", "run_id": "r-1"})
    with pytest.raises(BadRequest, match="lacks field since") as caught:
        store.get_checkpoint(KEY, PageCursor)
    assert caught.value.system is System.TABLES


def test_a_wrong_account_key_is_an_auth_failure(azurite: AzuriteHandle) -> None:
    wrong = azurite.connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    store = TableSyncStateStore.from_settings(StateSettings(connection_string=wrong),
                                              table_name="authcheck")
    with pytest.raises(AuthFailed) as caught:
        store.get_watermark(KEY)
    assert caught.value.system is System.TABLES and caught.value.status == 403
    assert not caught.value.retryable


def test_an_unreachable_store_is_transient() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey=a2V5;"
                  f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};")
    table = TableClient.from_connection_string(connection, "unreachable", retry_total=0)
    with pytest.raises(TransientError) as caught:
        TableSyncStateStore(table).get_watermark(KEY)
    assert caught.value.retryable and caught.value.operation == "create_table"


def test_settings_without_a_connection_string_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STATE_STORAGE_CONNECTION"):
        TableSyncStateStore.from_settings(StateSettings(connection_string=""))


def _http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}\nsecond line with details")
    error.status_code = status
    return error


@pytest.mark.parametrize("error, expected", [
    (ResourceModifiedError("etag"), PreconditionFailed),
    (ResourceExistsError("exists"), PreconditionFailed),
    (ClientAuthenticationError("denied"), AuthFailed),
    (ServiceRequestError("connection refused"), TransientError),
    (_http_error(400), BadRequest),
    (_http_error(404), NotFound),
    (_http_error(409), PreconditionFailed),
    (_http_error(412), PreconditionFailed),
    (_http_error(429), TransientError),
    (_http_error(500), TransientError),
    (_http_error(503), TransientError),
])
def test_sdk_errors_map_to_the_taxonomy(error: Exception, expected: type[Exception]) -> None:
    mapped = table_error(error, "get_entity")  # type: ignore[arg-type]
    assert type(mapped) is expected
    assert mapped.system is System.TABLES and mapped.operation == "get_entity"
    assert "second line" not in str(mapped)
