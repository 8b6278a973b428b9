"""Application Insights over OpenTelemetry: logs, spans and metrics, when the app has a
connection string (``APPLICATIONINSIGHTS_CONNECTION_STRING``), and nothing otherwise.

``configure_telemetry`` is cheap to import and to call without the setting: OpenTelemetry is
imported only when there is somewhere to send to. ``MeteredCallStats`` counts the HTTP clients'
requests and throttled responses for the run they were made for.
"""

from shared.adapters.telemetry.call_stats import MeteredCallStats
from shared.adapters.telemetry.configuration import CONNECTION_SETTING, configure_telemetry

__all__ = ["CONNECTION_SETTING", "MeteredCallStats", "configure_telemetry"]
