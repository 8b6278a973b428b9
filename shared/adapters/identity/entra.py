"""Entra ID tokens through MSAL: client credentials for the app.

One ``ConfidentialClientApplication`` per process keeps MSAL's token cache warm
(``acquire_token_for_client`` checks the cache first). MSAL error dicts become ``AuthFailed``
(a wrong secret, a missing consent: permanent), except the token endpoint's own throttling and
outages, which become ``TransientError`` so the work is retried rather than dead-lettered.
"""

from __future__ import annotations

import threading
from typing import Any

import msal
import requests

from shared.config import EntraSettings, HttpSettings
from shared.errors import AuthFailed, System, TransientError


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

    def __init__(self, entra: EntraSettings, http: HttpSettings) -> None:
        self._lock = threading.Lock()
        self._app = msal.ConfidentialClientApplication(
            entra.client_id,
            client_credential=entra.client_secret,
            authority=entra.authority,
            http_client=VerifyingSession(http.verify, http.timeout_s),
            # The default instance discovery asks login.microsoftonline.com about the authority,
            # which fails for sovereign clouds' private hosts and for the local emulator.
            instance_discovery=entra.authority_host.rstrip("/") == "https://login.microsoftonline.com",
        )

    def app_token(self, scope: str) -> str:
        """An app-only token (client credentials) for ``scope``, e.g. ``{org}/.default``."""
        with self._lock:
            result = self._call(lambda: self._app.acquire_token_for_client(scopes=[scope]))
        return _token_or_raise(result, "acquire token for client")

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
