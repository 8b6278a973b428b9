"""Entra ID tokens through MSAL: client credentials for the app, on-behalf-of for a CRM user.

One ``ConfidentialClientApplication`` per process keeps MSAL's token cache warm
(``acquire_token_for_client`` checks the cache first). MSAL error dicts become ``AuthFailed``
(a wrong secret, a missing consent: permanent), except the token endpoint's own throttling and
outages, which become ``TransientError`` so the work is retried rather than dead-lettered.

On-behalf-of: MSAL's ``acquire_token_on_behalf_of`` never looks in its cache, so tokens it returns
are cached here, partitioned by a hash of the user's assertion. A token is only ever handed back
for the very assertion it was obtained with, so one user's token can never be served to another
(not even to a forged assertion that copies their ``oid``: its hash differs, so Entra sees it).
Entra refusing the assertion (expired, not for us, an app-only token) is ``Unauthorized``: the
caller's token is at fault, not our configuration.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msal
import requests

from shared.adapters.identity.certificate import client_credential
from shared.config import EntraSettings, HttpSettings
from shared.errors import AuthFailed, System, TransientError, Unauthorized

# A cached token is used until this long before it expires (MSAL's own margin), so a request
# never starts with a token that dies half-way.
_EXPIRY_MARGIN_S = 300.0
# Partitions kept for on-behalf-of tokens; the least recently used go first.
_USER_CACHE_SIZE = 1024


class VerifyingSession(requests.Session):
    """A session that passes ``verify`` and ``timeout`` on every request.

    ``REQUESTS_CA_BUNDLE`` in the environment overrides ``Session.verify``; a per-request value
    does not get overridden, so a configured CA bundle is actually used.
    """

    def __init__(self, verify: str | bool, timeout_s: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(method, url, *args, **kwargs)


class EntraTokenProvider:
    """Bearer tokens for outbound calls, cached by MSAL."""

    def __init__(
        self,
        entra: EntraSettings,
        http: HttpSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._user_lock = threading.Lock()
        # (sha256 of the assertion, scope) -> (access token, monotonic time it stops being used)
        self._user_tokens: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._entra = entra
        self._http = http
        self._built: msal.ConfidentialClientApplication | None = None
        self._build_lock = threading.Lock()

    @property
    def _app(self) -> msal.ConfidentialClientApplication:
        # Built on first use, inside ``_call``: MSAL reads the authority's metadata over the
        # network when it is built, and building the app's services must make no call (an
        # outage of Entra then surfaces as a transient failure of the work that needs a token).
        with self._build_lock:
            if self._built is None:
                entra = self._entra
                self._built = msal.ConfidentialClientApplication(
                    entra.client_id,
                    client_credential=client_credential(entra),
                    authority=entra.authority,
                    http_client=VerifyingSession(self._http.verify, self._http.timeout_s),
                    # The default instance discovery asks login.microsoftonline.com about the
                    # authority, which fails for sovereign clouds' private hosts and for the
                    # local emulator.
                    instance_discovery=(
                        entra.authority_host.rstrip("/") == "https://login.microsoftonline.com"
                    ),
                )
            return self._built

    def app_token(self, scope: str) -> str:
        """An app-only token (client credentials) for ``scope``, e.g. ``{org}/.default``."""
        with self._lock:
            result = self._call(lambda: self._app.acquire_token_for_client(scopes=[scope]))
        return _token_or_raise(result, "acquire token for client")

    def user_token(self, assertion: str, scope: str) -> str:
        """A token for ``scope`` (e.g. ``{org}/user_impersonation``) acting as the user whose
        validated access token for the connector's API is ``assertion`` (on-behalf-of).

        Raises ``Unauthorized`` when Entra refuses the assertion, ``AuthFailed`` when our own
        registration is at fault (secret, consent), ``TransientError`` on outages.
        """
        key = (hashlib.sha256(assertion.encode()).hexdigest(), scope)
        with self._user_lock:
            cached = self._user_tokens.get(key)
            if cached is not None and self._monotonic() < cached[1]:
                self._user_tokens.move_to_end(key)
                return cached[0]
        # Not under a lock: one user's exchange must not hold up every other user's.
        result = self._call(
            lambda: self._app.acquire_token_on_behalf_of(user_assertion=assertion, scopes=[scope])
        )
        token = _user_token_or_raise(result)
        lifetime = float(result.get("expires_in") or 0)
        with self._user_lock:
            self._user_tokens[key] = (token, self._monotonic() + lifetime - _EXPIRY_MARGIN_S)
            self._user_tokens.move_to_end(key)
            while len(self._user_tokens) > _USER_CACHE_SIZE:
                self._user_tokens.popitem(last=False)
        return token

    @staticmethod
    def _call(acquire: Any) -> dict[str, Any]:
        try:
            result = acquire()
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TransientError(
                System.ENTRA, f"token endpoint unreachable: {type(exc).__name__}"
            ) from exc
        except msal.exceptions.MsalServiceError as exc:  # a 5xx from the token endpoint
            raise TransientError(
                System.ENTRA, f"token endpoint failed: {str(exc).splitlines()[0][:200]}"
            ) from exc
        except ValueError as exc:  # MSAL raises ValueError for an unreachable/invalid authority
            raise AuthFailed(System.ENTRA, f"invalid authority: {exc}") from exc
        return dict(result or {})


# OAuth's codes for "try again later" (RFC 6749 §5.2 and Entra's throttling, AADSTS90055).
_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


# Entra codes of an on-behalf-of request whose *assertion* is at fault (not our registration):
# AADSTS7000114 the assertion is an app-only token ("unauthorized_client"); every
# "invalid_grant" (50013 bad assertion, 500133 expired, 50034 unknown user, ...) and
# "interaction_required" (MFA or conditional access wants the user back) except a missing consent.
_APP_ASSERTION_CODE = 7000114
_CONSENT_CODES = frozenset({65001})


def _user_token_or_raise(result: dict[str, Any]) -> str:
    token = result.get("access_token")
    if isinstance(token, str) and token:
        return token
    error = str(result.get("error") or "")
    codes = result.get("error_codes") or []
    code = codes[0] if isinstance(codes, list) and codes and isinstance(codes[0], int) else None
    refused_assertion = (
        error in ("invalid_grant", "interaction_required") and code not in _CONSENT_CODES
    ) or (error == "unauthorized_client" and code == _APP_ASSERTION_CODE)
    if refused_assertion:
        description = str(result.get("error_description") or error).splitlines()[0]
        raise Unauthorized(
            f"Entra refused the user's token: {description[:300]}",
            code=f"AADSTS{code}" if code is not None else error or None,
        )
    return _token_or_raise(result, "acquire token on behalf of a user")


def _token_or_raise(result: dict[str, Any], operation: str) -> str:
    token = result.get("access_token")
    if isinstance(token, str) and token:
        return token
    description = str(result.get("error_description") or "no token returned").splitlines()[0]
    error = TransientError if result.get("error") in _TRANSIENT_ERRORS else AuthFailed
    raise error(
        System.ENTRA,
        description[:300],
        operation=operation,
        code=str(result.get("error") or "") or None,
        request_id=str(result.get("correlation_id") or "") or None,
    )
