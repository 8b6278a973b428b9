"""How the console connects: the app settings (``ops.settings_source``), then the app's own
services (``shared.bootstrap.build_services``), the CRM tables, the run history and the queues,
with the same identity or connection strings as the app.

``open_console(args)`` is what every command's handler calls first (``ops.arguments`` gives every
command the ``--settings`` and ``--json`` it reads).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient

from ops.crm import CrmDirectory
from ops.errors import UsageError
from ops.history import RunHistory
from ops.keyvault import ESSENTIAL, resolve_references
from ops.output import Output
from ops.queues import LocalQueueAdmin, QueueAdmin, ServiceBusQueueAdmin, UnavailableQueues
from ops.settings_source import SettingsSource, find_settings
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.identity.entra import EntraTokenProvider
from shared.adapters.servicebus.message_codec import dead_letter_queue, fit_items
from shared.adapters.storage.account import table_service
from shared.bootstrap import Services, build_services, needs_identity
from shared.config import Settings, load_settings
from shared.domain.commands import QueueCommand
from shared.errors import ConfigError
from shared.services.ports import Item, ReceivedMessage

# The console must not be counted as the app in Application Insights: its reads are no sync,
# and a dry run's "run completed" would look like a real one on the dashboards.
_TELEMETRY_SETTINGS = ("APPLICATIONINSIGHTS_CONNECTION_STRING",
                       "APPLICATIONINSIGHTS_AUTHENTICATION_STRING")


@dataclass
class Console:
    """Everything a command talks to, built once per invocation (building makes no call)."""

    source: SettingsSource
    environ: dict[str, str]
    services: Services
    crm: CrmDirectory
    history: RunHistory
    tables: TableServiceClient
    queues: QueueAdmin
    out: Output
    credential: TokenCredential | None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def queue_names(self) -> list[str]:
        """The app's batch queues, opt-in first."""
        queues = self.settings.queues
        return [queues.optin_queue, queues.suppression_queue, queues.engagement_queue]

    def parked_queue(self, queue: str) -> str:
        """The queue the app moves a hopeless batch of ``queue`` to."""
        return dead_letter_queue(queue)


def output_for(args: argparse.Namespace) -> Output:
    # sys.stdout at call time, so that a caller's redirection (tests, scripts) is honoured.
    return Output(sys.stdout, sys.stderr, as_json=bool(getattr(args, "json", False)))


def open_console(args: argparse.Namespace) -> Console:
    out = output_for(args)
    source = find_settings(getattr(args, "settings", None), os.environ)
    identity = _OperatorIdentity()
    environ = {name: value
               for name, value in _with_secrets(source.values, out, identity).items()
               if name not in _TELEMETRY_SETTINGS}
    settings = load_settings(environ)  # names the first bad setting (exit 2)
    credential = identity() if needs_identity(settings) else None
    services = build_services(environ, publisher=NoPublisher())
    tokens = EntraTokenProvider(settings.entra, settings.http)
    dataverse = DataverseClient(settings.dataverse, settings.http,
                                lambda: tokens.app_token(settings.dataverse.scope))
    tables = table_service(settings.state, credential=credential)
    return Console(
        source=source, environ=environ, services=services, crm=CrmDirectory(dataverse),
        history=RunHistory(tables, services.sync_state), tables=tables,
        queues=_queues(environ, settings, credential), out=out, credential=credential,
    )


def _with_secrets(
    values: dict[str, str], out: Output, identity: Callable[[], TokenCredential]
) -> dict[str, str]:
    """``values`` with their Key Vault references read (the deployed app's settings)."""
    resolved = resolve_references(values, identity)
    for name, problem in sorted(resolved.problems.items()):
        if name in ESSENTIAL:
            raise UsageError(f"cannot read {name} from Key Vault ({problem}): the signed-in "
                             "operator needs Key Vault Secrets User on the vault")
        out.note(f"warning: {name} left out, its Key Vault reference could not be read: "
                 f"{problem}")
    return resolved.values


def _queues(
    environ: dict[str, str], settings: Settings, credential: TokenCredential | None
) -> QueueAdmin:
    local = (environ.get("LOCAL_QUEUE_DIR") or "").strip()
    if local:
        return LocalQueueAdmin(Path(local))
    try:
        return ServiceBusQueueAdmin.from_settings(settings.queues, credential)
    except ConfigError as error:
        return UnavailableQueues(str(error))


class _OperatorIdentity:
    """The operator's identity for Azure resources, built on first use and then shared:
    ``DefaultAzureCredential`` takes the Azure CLI login on a workstation. Building it makes no
    call."""

    def __init__(self) -> None:
        self._credential: TokenCredential | None = None

    def __call__(self) -> TokenCredential:
        if self._credential is None:
            # Imported here: the local stack, which uses connection strings, never pays for it.
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return self._credential


class NoPublisher:
    """The console never puts a batch on the app's queues: the services it builds get this
    publisher, so no code path can (a dry run brings its own, which applies in-process)."""

    def fit(self, changes: Iterable[Item], *, max_items: int) -> Iterator[tuple[Item, ...]]:
        return fit_items(changes, max_items=max_items)

    def publish(
        self, queue: str, commands: Sequence[QueueCommand], *, session_id: str | None = None
    ) -> None:
        raise RuntimeError("the console does not publish to the app's queues")

    def dead_letter(
        self, queue: str, message: ReceivedMessage, *, reason: str, description: str
    ) -> None:
        raise RuntimeError("the console does not move messages to the dead letters")
