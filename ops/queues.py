"""The queues as an operator sees them: how many messages wait and how many are dead-lettered.

``QueueAdmin`` is the small interface every command uses; the local stack's queues (the dev
host's SQLite store) and Service Bus implement it. Dead-letter operations extend it in their own
module (``ops.dead_letters``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.servicebus.management import ServiceBusAdministrationClient

from devhost.local_queue import DB_FILE, LocalQueueStore
from ops.errors import UsageError
from shared.config import QueueSettings
from shared.errors import AuthFailed, ConfigError, NotFound, System, TransientError


class QueueAdmin(Protocol):
    @property
    def where(self) -> str:
        """Which queues these are, for the reader (a directory, a namespace)."""

    def counts(self, queue: str) -> tuple[int, int]:
        """(messages waiting, messages the broker dead-lettered) of one queue. Raises
        ``NotFound`` for a queue that does not exist."""


class LocalQueueAdmin:
    """The dev host's durable local queues (``make run``, the tests' local stacks)."""

    def __init__(self, directory: Path) -> None:
        if not (directory / DB_FILE).exists():
            # Opening the store would create an empty one, hiding the mistake.
            raise UsageError(f"no local queues in {directory}: is the local stack "
                             "(`make run`) running?")
        self.store = LocalQueueStore(directory)

    @property
    def where(self) -> str:
        return str(self.store.directory)

    def counts(self, queue: str) -> tuple[int, int]:
        counts = self.store.counts(queue)
        return counts.active, counts.dead_lettered


class RuntimeProperties(Protocol):
    """The part of ``ServiceBusAdministrationClient`` the counts need (a fake in tests)."""

    def get_queue_runtime_properties(self, queue_name: str, **kwargs: Any) -> Any: ...


class ServiceBusQueueAdmin:
    """Service Bus, through its administration API. Reading runtime counts needs *Manage*
    rights (Azure Service Bus Data Owner) on the namespace; the app's own identity has no such
    role, so the console runs as the operator."""

    def __init__(self, client: RuntimeProperties, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    @classmethod
    def from_settings(
        cls, settings: QueueSettings, credential: TokenCredential | None
    ) -> ServiceBusQueueAdmin:
        if settings.connection_string:
            client = ServiceBusAdministrationClient.from_connection_string(
                settings.connection_string)
            return cls(client, client.fully_qualified_namespace)
        if settings.namespace and credential is not None:
            return cls(ServiceBusAdministrationClient(settings.namespace, credential),
                       settings.namespace)
        raise ConfigError("no queues configured: set ServiceBusConnection, or "
                          "ServiceBusConnection__fullyQualifiedNamespace (or LOCAL_QUEUE_DIR "
                          "for the local stack)")

    @property
    def where(self) -> str:
        return self.namespace

    def counts(self, queue: str) -> tuple[int, int]:
        operation = "queue runtime properties"
        try:
            properties = self.client.get_queue_runtime_properties(queue)
        except ResourceNotFoundError:
            raise NotFound(System.SERVICEBUS, f"queue {queue} does not exist",
                           operation=operation) from None
        except ClientAuthenticationError as error:
            raise AuthFailed(System.SERVICEBUS, _NEEDS_MANAGE, operation=operation) from error
        except HttpResponseError as error:
            if error.status_code in (401, 403):
                raise AuthFailed(System.SERVICEBUS, _NEEDS_MANAGE, status=error.status_code,
                                 operation=operation) from error
            raise TransientError(System.SERVICEBUS, str(error.reason or error),
                                 status=error.status_code, operation=operation) from error
        except AzureError as error:
            raise TransientError(System.SERVICEBUS, type(error).__name__,
                                 operation=operation) from error
        return (int(properties.active_message_count or 0),
                int(properties.dead_letter_message_count or 0))


_NEEDS_MANAGE = ("reading queue counts needs Manage rights on the namespace (Azure Service Bus "
                 "Data Owner) for the signed-in operator")


class UnavailableQueues:
    """No queue settings: every count says why, and the rest of the console still works."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    @property
    def where(self) -> str:
        return "unavailable"

    def counts(self, queue: str) -> tuple[int, int]:
        raise ConfigError(self.reason)
