"""Log records carry the dimensions of the work they were logged for."""

from __future__ import annotations

import logging

from shared.services.telemetry import current


class DimensionsFilter(logging.Filter):
    """Adds the current scope's dimensions (run id, email account id, sync type, queue, dry run)
    to each record as attributes, as ``extra=`` would; the OpenTelemetry handler exports a
    record's attributes as the trace's custom dimensions. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().attributes().items():
            if not hasattr(record, name):  # what the caller passed in ``extra`` wins
                setattr(record, name, value)
        return True
