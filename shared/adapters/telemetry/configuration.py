"""Whether this process sends telemetry, decided once, on the first build of the services."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

logger = logging.getLogger(__name__)

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
# With this set, the Functions worker configures the Azure Monitor distro itself (with its
# defaults); configuring it a second time would send every log line and span twice.
WORKER_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
# "Authorization=AAD" when Application Insights accepts only Entra-signed telemetry (the Bicep's
# default): the exporter then signs with the managed identity.
AUTHENTICATION_SETTING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"

_lock = threading.Lock()
_configured: bool | None = None  # None: not tried yet in this process; then whether it is on


def configure_telemetry(environ: Mapping[str, str]) -> bool:
    """Start sending logs, spans and metrics to Application Insights when ``environ`` has a
    connection string; True when telemetry is on. Once per process: later calls (the dev host
    builds the services again for each local stack) change nothing.

    Telemetry must never stop the syncs: if it cannot be set up, the app runs without it.
    """
    connection_string = environ.get(CONNECTION_SETTING, "").strip()
    if not connection_string:
        return False
    global _configured
    with _lock:
        if _configured is None:
            _configured = _start(connection_string, environ)
        return _configured


def _start(connection_string: str, environ: Mapping[str, str]) -> bool:
    try:
        # Imported here, not at the top: without the setting nothing of OpenTelemetry loads.
        from shared.adapters.telemetry.azure_monitor import start

        start(connection_string,
              worker_configured=environ.get(WORKER_SETTING, "").strip().lower() == "true",
              entra_auth="authorization=aad" in environ.get(AUTHENTICATION_SETTING, "").lower())
    except Exception as error:
        # The class only: the message may quote the connection string.
        logger.error("telemetry to Application Insights is off: %s", type(error).__name__)
        return False
    logger.info("telemetry to Application Insights is on")
    return True
