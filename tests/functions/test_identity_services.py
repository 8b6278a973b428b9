"""The composition root from identity-only settings (as the Bicep deploys them): Table Storage and
Service Bus reached with the managed identity, and nothing on the network while building."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential

from shared import bootstrap
from shared.adapters.servicebus.publisher import ServiceBusBatchPublisher
from shared.config import load_settings

DEPLOYED = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
    "ENTRA_TENANT_ID": "3f9a2c4e-7b1d-4e8a-9c5f-2d6b8e1a4c70",
    "ENTRA_CLIENT_ID": "5b1e3d2a-8c4f-4a6e-b9d7-1f2e3c4d5a6b",
    "ENTRA_CLIENT_SECRET": "from-key-vault",
    "AzureWebJobsStorage__accountName": "contosoconnector",
    "ServiceBusConnection__fullyQualifiedNamespace": "contoso-connector.servicebus.windows.net",
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[:2])
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts


def test_identity_only_settings_build_every_service_without_a_call(
    no_network: list[Any],
) -> None:
    services = bootstrap.build_services(dict(DEPLOYED))
    assert isinstance(services.publisher, ServiceBusBatchPublisher)
    client = services.publisher._client
    assert client.fully_qualified_namespace == DEPLOYED[
        "ServiceBusConnection__fullyQualifiedNamespace"]
    assert isinstance(client._credential, DefaultAzureCredential)
    tables = [services.sync_state._rows._table, services.run_journal._table,  # type: ignore[attr-defined]
              services.event_store._table]  # type: ignore[attr-defined]
    for table in tables:
        assert table.url == "https://contosoconnector.table.core.windows.net"
        assert isinstance(table.credential, DefaultAzureCredential)
    # One credential for the process, shared by Service Bus and every table.
    assert len({id(client._credential), *(id(table.credential) for table in tables)}) == 1
    assert no_network == []


def test_connection_strings_need_no_credential(no_network: list[Any]) -> None:
    settings = load_settings({
        **{k: v for k, v in DEPLOYED.items() if "__" not in k},
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "ServiceBusConnection": "Endpoint=sb://contoso.servicebus.windows.net/;"
                                "SharedAccessKeyName=app;SharedAccessKey=a2V5",
    })
    assert not bootstrap.needs_identity(settings)
    assert bootstrap.needs_identity(load_settings(DEPLOYED))
