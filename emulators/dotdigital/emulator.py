"""dotdigital API emulator: authenticates, resolves the account's region, applies the rate limits,
then hands the request to an ``AccountRoute`` of the core or of a feature module.

``/r1/``, ``/r2/`` and ``/r3/`` path prefixes stand in for the regional hosts. Every account route
is served under each prefix; a call to the wrong region is refused with 403 "Access is denied",
except ``GET /r1/v2/account-info``, which answers for every account and names its endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from http import HTTPStatus
from typing import Any

from emulators.clock import Clock
from emulators.dotdigital.account_info import AccountInfo
from emulators.dotdigital.account_seed import REGIONS
from emulators.dotdigital.account_store import AccountStore, ApiUser
from emulators.dotdigital.accounts_seeding import seed_accounts
from emulators.dotdigital.admin_actions import AdminActions
from emulators.dotdigital.contacts_v2 import ContactsV2
from emulators.dotdigital.contacts_v3 import ContactsV3
from emulators.dotdigital.contracts import AccountContext, AccountRoute, v2_error
from emulators.dotdigital.directory import StoreContactDirectory
from emulators.dotdigital.engagement import EngagementFeature
from emulators.dotdigital.programs import ProgramsFeature
from emulators.dotdigital.rate_limits import RateLimiter
from emulators.dotdigital.resubscribe import DEFAULT_RESEND_AFTER, Resubscriptions
from emulators.dotdigital.suppressions import Suppressions
from emulators.dotdigital.v2_input import ApiError
from emulators.http import Emulator, Request, Response, Route, route

AUTHORIZATION_DENIED = "Authorization has been denied for this request."
ACCESS_DENIED = "Access is denied"
# Creating an enrolment does not count toward the flat hourly limit (documented).
_UNMETERED = {("POST", "/v2/programs/enrolments")}
_FAULT_MESSAGES = {
    400: "The request is invalid.", 401: AUTHORIZATION_DENIED, 403: ACCESS_DENIED,
    500: "An error has occurred.",
}


class DotdigitalEmulator(Emulator):
    name = "dotdigital"

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.stores: dict[int, AccountStore] = {}
        self.users: dict[str, tuple[int, ApiUser]] = {}
        self.limiter = RateLimiter(clock)
        self.directory = StoreContactDirectory(self.stores)
        self.features: list[ProgramsFeature | EngagementFeature] = [
            ProgramsFeature(clock, self.directory), EngagementFeature(clock, self.directory),
        ]
        self.resubscriptions = Resubscriptions(self.store_of)
        self.account_info = AccountInfo(self)
        self.admin = AdminActions(self)
        self.account_routes: list[AccountRoute] = [
            *self.account_info.routes(), *Suppressions(self.store_of).routes(),
            *self.resubscriptions.routes(), *ContactsV2(self.store_of).routes(),
            *ContactsV3(self.store_of).routes(),
        ]
        for feature in self.features:
            self.account_routes.extend(feature.routes())

    def store_of(self, account_id: int) -> AccountStore:
        return self.stores[account_id]

    # --- routing -------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            route(item.method, r"/[^/]+" + item.pattern.pattern, item.name,
                  self._region_handler(item))
            for item in self.account_routes
        ]

    def admin_routes(self) -> list[Route]:
        extra: list[Route] = []
        for feature in self.features:
            extra.extend(getattr(feature, "admin_routes", list)())
        return self.admin.routes() + extra

    def _region_handler(self, account_route: AccountRoute) -> Any:
        def handle(request: Request, _: re.Match[str]) -> Response:
            region, _slash, rest = request.path[1:].partition("/")
            inner = "/" + rest
            match = account_route.pattern.fullmatch(inner)
            if region not in REGIONS or match is None:
                return self.not_found(request)
            return self._serve(account_route, request, region, inner, match)
        return handle

    def _serve(
        self, account_route: AccountRoute, request: Request, region: str, inner: str,
        match: re.Match[str],
    ) -> Response:
        is_v3 = not inner.startswith("/v2/")
        with self.lock:
            found = self._authenticate(request)
            if found is None:
                if is_v3:
                    return Response.empty(401, [("WWW-Authenticate", 'Basic realm="dotdigital"')])
                return v2_error(401, AUTHORIZATION_DENIED)
            account_id, user = found
            store = self.stores[account_id]
            discovery = inner == "/v2/account-info" and region == "r1"
            if region != store.region and not discovery:
                return v2_error(403, ACCESS_DENIED)
            metered = (request.method, inner) not in _UNMETERED
            refusal, headers = self.limiter.admit(account_id, user.username, metered)
            if refusal is not None:
                return refusal
            try:
                response = account_route.handler(
                    AccountContext(account_id, store.region), request, match
                )
            except ApiError as error:
                response = error.response
        response.headers.extend(headers)
        return response

    def _authenticate(self, request: Request) -> tuple[int, ApiUser] | None:
        header = request.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(encoded.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        found = self.users.get(username.lower())
        if found is None or not hmac.compare_digest(found[1].password.encode(), password.encode()):
            return None
        return found

    def not_found(self, request: Request) -> Response:
        return v2_error(404, "No HTTP resource was found that matches the request URI "
                             f"'{request.base_url}{request.target}'.")

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        if status == 429:
            reset_in = max(1, round(retry_after)) if retry_after is not None else 60
            headers = self.limiter.headers(self.limiter.settings.per_minute, 0, reset_in)
            return self.limiter.too_many(headers, reset_in)
        message = _FAULT_MESSAGES.get(status) or _phrase(status)
        extra = []
        if retry_after is not None:
            extra.append(("Retry-After", str(max(0, round(retry_after)))))
        return Response.json(status, {"message": message}, extra)

    # --- admin hooks -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.stores.clear()
        self.users.clear()
        self.limiter.reset()
        self.resubscriptions.resend_after = DEFAULT_RESEND_AFTER
        for feature in self.features:
            feature.reset()

    def seed(self, payload: Any) -> dict[str, Any]:
        return seed_accounts(self, payload)

    def state(self, request: Request) -> Any:
        return self.admin.state(request.query, for_export=False)

    def export_state(self) -> Any:
        return self.admin.state({}, for_export=True)

    def describe(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "regions": {region: f"{self.base_url}/{region}/" for region in REGIONS},
            "account_info_url": f"{self.base_url}/r1/v2/account-info",
        }

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        unknown = set(payload) - {"rate_limits", "challenge_resend_seconds"}
        if unknown:
            raise ValueError(f"unknown dotdigital settings: {sorted(unknown)}")
        limits = self.limiter.settings
        if "rate_limits" in payload:
            limits = limits.updated(payload["rate_limits"])
        resend = payload.get("challenge_resend_seconds", self.resubscriptions.resend_after)
        if isinstance(resend, bool) or not isinstance(resend, (int, float)) or resend < 0:
            raise ValueError("challenge_resend_seconds must be a non-negative number")
        self.limiter.settings = limits
        self.resubscriptions.resend_after = float(resend)
        return {"rate_limits": self.limiter.describe(),
                "challenge_resend_seconds": self.resubscriptions.resend_after}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "An error has occurred."
