"""The check that no address, password, token or credential reaches the app's log lines."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from typing import Any

import pytest


def account_secrets(dataset: dict[str, Any]) -> list[str]:
    """Every dotdigital API user, password and Basic credential of a seed."""
    accounts = dataset["dotdigital"]["accounts"]
    return [*(account["password"] for account in accounts),
            *(account["apiUser"].lower() for account in accounts),
            *(base64.b64encode(f"{a['apiUser']}:{a['password']}".encode()).decode()
              for a in accounts)]


def assert_no_secret_logged(
    caplog: pytest.LogCaptureFixture, secrets: Iterable[str], *, at_least: int = 1
) -> None:
    """Neither any of ``secrets`` nor a bearer token, an Authorization value or a JWT is in a
    log line of the app (the emulators' own lines are not the app's)."""
    secrets = [secret.lower() for secret in secrets if secret]
    app_records = [r for r in caplog.records if not r.name.startswith("emulators")]
    assert len(app_records) >= at_least, [r.getMessage() for r in app_records]
    for record in app_records:
        line = record.getMessage() + (record.exc_text or "")
        if record.exc_info and not record.exc_text:
            line += logging.Formatter().formatException(record.exc_info)
        lowered = line.lower()
        for secret in secrets:
            assert secret not in lowered, (record.name, line)
        assert "bearer " not in lowered, (record.name, line)
        authorization = re.search(r"authorization['\"]?\s*[:=]\s*['\"]?([^'\",\s]*)", lowered)
        assert authorization is None or authorization.group(1) == "redacted", (record.name, line)
        assert not re.search(r"eyj[a-z0-9_-]{10,}\.", lowered), (record.name, line)  # a JWT
