"""Entra ID emulator: OIDC discovery, JWKS and the v2.0 token endpoint of one tenant.

Routes (``{tenant}`` is the tenant id or its domain, case-insensitive)::

    GET  /{tenant}/v2.0/.well-known/openid-configuration
    GET  /{tenant}/discovery/v2.0/keys
    POST /{tenant}/oauth2/v2.0/token      client_credentials, jwt-bearer (OBO), refresh_token;
                                          the client by secret or certificate (client assertion)

Admin (besides the shared ones): ``POST /_emulator/token`` mints a token directly (see
``minting``), ``POST /_emulator/rotate-keys`` rolls the signing key over. In process, the
Dataverse emulator calls ``verify_access_token``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from emulators.clock import Clock
from emulators.entra import errors
from emulators.entra.directory import DEFAULT_CLIENT_ID, Directory, parse_seed
from emulators.entra.discovery import jwks_uri, openid_configuration
from emulators.entra.errors import EntraError, entra_error_response
from emulators.entra.grants import RefreshGrant, TokenExchange
from emulators.entra.keys import KeyRing, generate_signing_key
from emulators.entra.minting import parse_mint_request
from emulators.entra.tokens import (
    DEFAULT_LIFETIME_SECONDS,
    Authority,
    TokenIssuer,
    TokenPolicy,
    TokenVerifier,
)
from emulators.http import Emulator, Request, Response, Route, route

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
_TENANT = r"/(?P<tenant>[^/]+)"
Handler = Callable[[Request, "re.Match[str]"], Response]


class EntraEmulator(Emulator):
    name = "entra"

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.policy = TokenPolicy()
        self.keyring = KeyRing(generate_signing_key(clock.now()))
        self.issuer = TokenIssuer(self.keyring, clock, self.policy)
        self.verifier = TokenVerifier(self.keyring, clock, self.policy)
        self.directory = Directory.default()
        self.refresh_tokens: dict[str, RefreshGrant] = {}

    # --- in-process API --------------------------------------------------------------------
    @property
    def authority(self) -> Authority:
        return Authority(self.base_url, self.directory.tenant_id)

    def verify_access_token(self, token: str, audience: str) -> dict[str, Any]:
        """The token's claims if this tenant issued it for ``audience`` and it is valid now.

        Raises ``InvalidToken`` (with a reason) for a bad signature, an unknown ``kid``, any
        ``alg`` but RS256, a wrong audience, issuer or tenant, or a token outside its lifetime.
        """
        with self.lock:
            authority = self.authority
        return self.verifier.verify(token, audience, authority)

    # --- routes ----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            *self._on_every_method(_TENANT + r"/v2\.0/\.well-known/openid-configuration",
                                   "openid-configuration", get=self._discovery),
            *self._on_every_method(_TENANT + r"/discovery/v2\.0/keys", "keys", get=self._keys),
            *self._on_every_method(_TENANT + r"/oauth2/v2\.0/token", "token", post=self._token),
        ]

    def _on_every_method(
        self, pattern: str, name: str, *, get: Handler | None = None,
        post: Handler | None = None,
    ) -> list[Route]:
        """Registers every method, so a wrong one gets Entra's answer, not the server's 405."""
        handlers = {"GET": get, "HEAD": get, "POST": post}
        return [route(method, pattern, name, handlers.get(method) or self._wrong_method)
                for method in _METHODS]

    def _wrong_method(self, request: Request, _: re.Match[str]) -> Response:
        if request.path.endswith("/token"):
            return self._error(errors.post_only(request.method), request)
        failure = EntraError(
            "invalid_request", 900561,
            f"The endpoint only accepts GET requests. Received a {request.method} request.",
            status=405,
        )
        return self._error(failure, request)

    def _tenant_error(self, request: Request, match: re.Match[str], kind: str) -> Response | None:
        tenant = unquote(match["tenant"])
        with self.lock:
            known = self.directory.is_tenant(tenant)
        if known:
            return None
        failure = errors.tenant_not_found(tenant)
        failure.error = kind
        return self._error(failure, request)

    def _discovery(self, request: Request, match: re.Match[str]) -> Response:
        failed = self._tenant_error(request, match, "invalid_tenant")
        if failed is not None:
            return failed
        with self.lock:
            return Response.json(200, openid_configuration(self.authority))

    def _keys(self, request: Request, match: re.Match[str]) -> Response:
        failed = self._tenant_error(request, match, "invalid_tenant")
        if failed is not None:
            return failed
        with self.lock:
            return Response.json(200, self.keyring.jwks(self.authority.issuer))

    def _token(self, request: Request, match: re.Match[str]) -> Response:
        failed = self._tenant_error(request, match, "invalid_request")
        if failed is not None:
            return failed
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            with self.lock:
                exchange = TokenExchange(self.authority, self.directory, self.issuer,
                                         self.verifier, self.refresh_tokens)
                body = exchange.exchange(form, _basic_credentials(request))
        except EntraError as failure:
            return self._error(failure, request)
        return Response.json(200, body, [("Cache-Control", "no-store, no-cache"),
                                         ("Pragma", "no-cache")])

    def _error(self, failure: EntraError, request: Request) -> Response:
        correlation_id = request.headers.get("client-request-id")
        return entra_error_response(failure, self.clock.now(), correlation_id)

    def not_found(self, request: Request) -> Response:
        failure = EntraError(
            "invalid_request", 900561, f"The endpoint {request.path} does not exist.", status=404
        )
        return self._error(failure, request)

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        if status == 429:
            failure = EntraError("temporarily_unavailable", 90055,
                                 "There are too many incoming requests.", status=status)
        else:
            failure = EntraError(
                "temporarily_unavailable" if status == 503 else "server_error", 90033,
                "A transient error has occurred. Please try again.", status=status,
            )
        response = entra_error_response(failure, self.clock.now())
        if retry_after is not None:
            response.headers.append(("Retry-After", str(max(0, int(round(retry_after))))))
        return response

    # --- admin hooks -----------------------------------------------------------------------
    def admin_routes(self) -> list[Route]:
        return [
            route("POST", r"/token", "mint-token", self._mint),
            route("POST", r"/rotate-keys", "rotate-keys", self._rotate_keys),
        ]

    def _mint(self, request: Request, _: re.Match[str]) -> Response:
        payload = request.json()
        with self.lock:
            mint = parse_mint_request(payload, self.directory)
            authority = self.authority
        if mint.user is not None:
            token, lifetime = self.issuer.user_token(
                authority, mint.user, mint.client.client_id, mint.audience, mint.scopes,
                lifetime=mint.lifetime_seconds, extra=mint.claims,
            )
        else:
            token, lifetime = self.issuer.app_token(
                authority, mint.client, mint.audience, roles=mint.roles,
                lifetime=mint.lifetime_seconds, extra=mint.claims,
            )
        return Response.json(200, {"access_token": token, "expires_in": lifetime,
                                   "token_type": "Bearer"})

    def _rotate_keys(self, request: Request, _: re.Match[str]) -> Response:
        payload = request.json() or {}
        if not isinstance(payload, dict) or set(payload) - {"keep_previous"}:
            raise ValueError("rotate-keys takes {\"keep_previous\": true|false}")
        keep_previous = payload.get("keep_previous", True)
        if not isinstance(keep_previous, bool):
            raise ValueError("keep_previous must be true or false")
        new_key = generate_signing_key(self.clock.now())
        with self.lock:
            self.keyring.rotate(new_key, keep_previous=keep_previous)
            self.verifier.forget()
            return Response.json(200, {"signing_kid": new_key.kid, "kids": self.keyring.kids()})

    def reset(self) -> None:
        self.directory = Directory.default()
        self.refresh_tokens = {}
        self.keyring.reset()
        self.verifier.forget()
        self.policy.lifetime_seconds = DEFAULT_LIFETIME_SECONDS
        self.policy.clock_skew_seconds = 0

    def seed(self, payload: Any) -> dict[str, Any]:
        parsed = parse_seed(payload)
        self.directory.apply(parsed)
        return {"clients": len(parsed.clients), "users": len(parsed.users)}

    def state(self, request: Request) -> Any:
        state = self.directory.to_seed()
        client_id = request.query.get("client_id")
        if client_id:
            state["clients"] = [c for c in state["clients"] if c["client_id"] == client_id.lower()]
        user = request.query.get("user")
        if user:
            found = self.directory.user(user)
            state["users"] = [u for u in state["users"] if found and u["oid"] == found.oid]
        return state

    def export_state(self) -> Any:
        return self.directory.to_seed()

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        unknown = set(payload) - {"token_lifetime_seconds", "clock_skew_seconds"}
        if unknown:
            raise ValueError(f"unknown entra settings: {sorted(unknown)}")
        lifetime = payload.get("token_lifetime_seconds", self.policy.lifetime_seconds)
        skew = payload.get("clock_skew_seconds", self.policy.clock_skew_seconds)
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime < 1:
            raise ValueError("token_lifetime_seconds must be a positive integer")
        if not isinstance(skew, int) or isinstance(skew, bool) or skew < 0:
            raise ValueError("clock_skew_seconds must be a non-negative integer")
        self.policy.lifetime_seconds = lifetime
        self.policy.clock_skew_seconds = skew
        return {"token_lifetime_seconds": lifetime, "clock_skew_seconds": skew}

    def describe(self) -> dict[str, Any]:
        with self.lock:
            authority = self.authority
            default = self.directory.client(DEFAULT_CLIENT_ID)
            return {
                "base_url": self.base_url,
                "tenant_id": authority.tenant_id,
                "tenant_domain": self.directory.tenant_domain,
                "authority": authority.url,
                "issuer": authority.issuer,
                "jwks_uri": jwks_uri(authority),
                "token_endpoint": f"{authority.url}/oauth2/v2.0/token",
                "default_client": {
                    "client_id": default.client_id if default else None,
                    "client_secret": default.client_secret if default else None,
                    "app_id_uri": default.app_id_uri if default else None,
                },
                "users": [{"oid": u.oid, "upn": u.upn} for u in self.directory.users.values()],
            }


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """client_secret_basic: the client id and secret in an HTTP Basic header."""
    header = request.headers.get("Authorization") or ""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if separator else None
