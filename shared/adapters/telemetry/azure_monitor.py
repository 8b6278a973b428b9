"""Set up the Azure Monitor OpenTelemetry distro for this app. Imported only when telemetry
is on: importing it loads OpenTelemetry."""

from __future__ import annotations

import logging
from typing import Any

from azure.monitor.opentelemetry import configure_azure_monitor

from shared.adapters.identity.managed_identity import managed_identity
from shared.adapters.telemetry.logs import DimensionsFilter
from shared.adapters.telemetry.otel import OpenTelemetryTelemetry
from shared.services import telemetry

logger = logging.getLogger(__name__)

# The app's own loggers: their lines are written to leave the app (ids and counts). Other
# libraries' loggers (the Azure SDK's HTTP logging prints request URLs) stay out.
LOGGER_NAME = "shared"
# No automatic spans of HTTP calls or Azure SDK operations: their URLs hold addresses
# (dotdigital's contacts/{email}, OData filters) and table keys. The app's own spans and the
# request metrics say what those would.
_NO_INSTRUMENTATION = {
    name: {"enabled": False}
    for name in ("azure_sdk", "requests", "urllib", "urllib3", "httpx", "httpx2", "django",
                 "fastapi", "flask", "psycopg2")
}


def start(connection_string: str, *, worker_configured: bool, entra_auth: bool = False) -> None:
    """Send this process's logs, spans and metrics to Application Insights; with ``entra_auth``
    signed with the managed identity (a resource with local authentication off refuses the rest).
    """
    if worker_configured:
        logger.warning("the Functions worker set up Application Insights itself "
                       "(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY): its defaults trace HTTP "
                       "calls with their URLs, addresses among them; unset it")
    else:
        options: dict[str, Any] = {}
        if entra_auth:
            options["credential"] = managed_identity()
        configure_azure_monitor(
            connection_string=connection_string,
            logger_name=LOGGER_NAME,
            instrumentation_options=_NO_INSTRUMENTATION,
            **options,
        )
    # The worker's set-up exports the root logger's records.
    logger_name = "" if worker_configured else LOGGER_NAME
    for handler in logging.getLogger(logger_name).handlers:
        handler.addFilter(DimensionsFilter())
    telemetry.install(OpenTelemetryTelemetry())
