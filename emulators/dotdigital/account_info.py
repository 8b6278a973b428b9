"""``GET /v2/account-info`` (region discovery and the hourly call count) and ``/v2/server-time``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from emulators.dotdigital.contact_model import timestamp_text
from emulators.dotdigital.contracts import AccountContext, AccountRoute, account_route
from emulators.http import Request, Response

if TYPE_CHECKING:
    from emulators.dotdigital.emulator import DotdigitalEmulator


class AccountInfo:
    def __init__(self, emulator: DotdigitalEmulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[AccountRoute]:
        return [
            account_route("GET", r"/v2/account-info", "v2.account-info", self.account_info),
            account_route("GET", r"/v2/server-time", "v2.server-time", self.server_time),
        ]

    def account_info(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        store = self.emulator.store_of(ctx.account_id)
        limiter = self.emulator.limiter
        properties: list[tuple[str, str, Any]] = [
            ("AvailableEmailSendsCredits", "Int", 1000000),
            ("AvailableSmsSendsCredits", "Int", 0),
            ("Name", "String", store.name),
            ("MainEmail", "String", store.main_email or store.users[0].username),
            ("APILocale", "String", "en-GB"),
            ("ApiCallsInLastHour", "Int", limiter.calls_in_last_hour(ctx.account_id)),
            ("ApiCallsRemaining", "Int", limiter.remaining_this_hour(ctx.account_id)),
            # Trailing slash as the service sends it; clients append "v2/..." to it.
            ("ApiEndpoint", "String", f"{request.base_url}/{ctx.region}/"),
            ("CurrencyCode", "String", "GBP"),
            ("TimeZoneIana", "String", "Europe/London"),
            ("ShowClock", "Boolean", "False"),
        ]
        return Response.json(200, {"id": ctx.account_id, "properties": [
            {"name": name, "type": kind, "value": str(value)} for name, kind, value in properties
        ]})

    def server_time(self, ctx: AccountContext, request: Request, _: re.Match[str]) -> Response:
        return Response.json(200, timestamp_text(self.emulator.clock.time()))
