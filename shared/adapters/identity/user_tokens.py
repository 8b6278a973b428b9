"""Validating the bearer tokens CRM users send to the connector's HTTP API.

Function keys are not security: every HTTP request must carry an Entra ID access token that this
tenant issued to a *user* for *this* API. The checks are made here, in code, with PyJWT:

- signature: RS256 only (pinned, so ``alg: none`` and HS256 "signed" with the public key are
  refused), by a key the tenant publishes in its JWKS;
- issuer: the tenant's v2.0 issuer (from its discovery document) or its v1 issuer
  ``https://sts.windows.net/{tenant}/`` (an app registration whose manifest asks for v1 tokens
  gets those), and ``tid`` the configured tenant;
- audience: the API's App ID URI (``CONNECTOR_API_AUDIENCE``) or its client id (v2 tokens name the
  client id, v1 tokens the App ID URI);
- lifetime: ``exp`` and ``nbf`` with 60 s of leeway for clock drift;
- delegation: ``scp`` contains the API's exposed scope; app-only tokens (``idtyp`` app, or
  ``roles`` without ``scp``) are refused, because the work runs as the user (on-behalf-of) and
  an application has no CRM user to act as.

Keys are fetched once and cached. A token naming a ``kid`` the cache does not know triggers one
refresh (Entra rolls keys over), but at most one such refresh per ``refresh_interval_s``, so a
flood of tokens with made-up ``kid`` values cannot turn into a flood of requests to Entra.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from shared.adapters.identity.entra import VerifyingSession
from shared.config import EntraSettings, HttpSettings
from shared.errors import AuthFailed, System, TransientError, Unauthorized

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]
LEEWAY_S = 60.0
# Minimum time between refreshes forced by an unknown ``kid`` (Microsoft.IdentityModel's
# RefreshInterval is also 5 minutes).
REFRESH_INTERVAL_S = 300.0
# Keys are re-read at least this often even when no unknown ``kid`` shows up, so a key the tenant
# retired (say, after a compromise) stops being trusted within a day.
MAX_KEY_AGE_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class CrmUser:
    """The signed-in CRM user behind a validated token.

    ``assertion`` is the raw token, kept for the on-behalf-of exchange; it is out of ``repr`` so a
    logged user never leaks it.
    """

    object_id: str
    tenant_id: str
    name: str | None
    upn: str | None
    assertion: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Metadata:
    issuer: str
    jwks_uri: str
    tenant_id: str


class UserTokenValidator:
    """Turns an ``Authorization`` header into a ``CrmUser``, or raises ``Unauthorized``.

    Thread-safe; keep one per process so the key cache is shared.
    """

    def __init__(
        self,
        entra: EntraSettings,
        audience: str | Iterable[str] | None = None,
        required_scope: str | None = None,
        http: HttpSettings | None = None,
        *,
        session: requests.Session | None = None,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        http = http or HttpSettings()
        self._entra = entra
        wanted = [audience] if isinstance(audience, str) else list(audience or ())
        if not wanted:
            wanted = [value for value in (entra.api_audience, entra.client_id) if value]
        # Resources treat their identifier with and without a trailing slash as the same.
        self._audiences = sorted({v for a in wanted for v in (a, a.rstrip("/"))})
        self._scope = required_scope or entra.api_scope
        self._session = session or VerifyingSession(http.verify, http.timeout_s)
        self._refresh_interval_s = refresh_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._metadata: _Metadata | None = None
        self._keys: dict[str, Any] = {}
        self._loaded_at: float | None = None
        self._forced_at: float | None = None

    # --- validation --------------------------------------------------------------------------
    def validate(self, authorization_header: str | None) -> CrmUser:
        token = _bearer_token(authorization_header)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        # Checked before any key lookup so an unsigned or HMAC token never causes a JWKS fetch;
        # ``algorithms`` below pins the same thing inside PyJWT.
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("unsupported signing algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token names no signing key")
        key, metadata = self._key(kid)
        claims = self._decode(token, key, metadata)
        return self._user(claims, metadata, token)

    def _decode(self, token: str, key: Any, metadata: _Metadata) -> dict[str, Any]:
        issuers = {metadata.issuer, f"https://sts.windows.net/{metadata.tenant_id}/"}
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audiences,
                issuer=issuers,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "tid", "oid"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("token is not for this API (audience)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token from another issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim} claim") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthorized("unsupported signing algorithm") from None
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        return claims

    def _user(self, claims: Mapping[str, Any], metadata: _Metadata, token: str) -> CrmUser:
        if str(claims.get("tid", "")).lower() != metadata.tenant_id.lower():
            raise Unauthorized("token from another tenant")
        scopes = claims.get("scp")
        if claims.get("idtyp") == "app" or (scopes is None and "roles" in claims):
            raise Unauthorized("app-only token; a signed-in user is required")
        if not isinstance(scopes, str) or self._scope not in scopes.split():
            raise Unauthorized(f"token lacks the {self._scope} scope")
        oid = claims.get("oid")
        if not isinstance(oid, str) or not oid:
            raise Unauthorized("token names no user")
        upn = claims.get("upn") or claims.get("preferred_username")
        name = claims.get("name")
        return CrmUser(
            object_id=oid,
            tenant_id=str(claims["tid"]),
            name=name if isinstance(name, str) else None,
            upn=upn if isinstance(upn, str) else None,
            assertion=token,
        )

    # --- keys ----------------------------------------------------------------------------------
    def _key(self, kid: str) -> tuple[Any, _Metadata]:
        with self._lock:
            now = self._monotonic()
            fresh = False
            if self._metadata is None or self._loaded_at is None:
                self._load()
                fresh = True
            elif now - self._loaded_at >= MAX_KEY_AGE_S:
                try:
                    self._load()
                    fresh = True
                except TransientError:
                    # Entra is down: the keys we have were valid a day ago; better than refusing
                    # every user. The next request tries again.
                    log.warning("signing keys could not be refreshed; using the cached ones")
            if kid not in self._keys and not fresh and self._may_force(now):
                self._forced_at = now
                log.info("token names an unknown signing key; refreshing the tenant's keys")
                self._load()
            key = self._keys.get(kid)
            metadata = self._metadata
        if key is None or metadata is None:
            raise Unauthorized("unknown signing key")
        return key, metadata

    def _may_force(self, now: float) -> bool:
        return self._forced_at is None or now - self._forced_at >= self._refresh_interval_s

    def _load(self) -> None:
        """Re-read the discovery document and the JWKS; replaces the key set whole, so a key the
        tenant no longer publishes is no longer trusted."""
        if self._metadata is None:
            self._metadata = self._discover()
        document = self._get_json(self._metadata.jwks_uri, "signing keys")
        keys: dict[str, Any] = {}
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256").key
            except jwt.PyJWTError:
                continue  # one unusable entry must not hide the others
        if not keys:
            raise TransientError(System.ENTRA, "the tenant publishes no usable signing key",
                                 operation="read signing keys")
        self._keys = keys
        self._loaded_at = self._monotonic()
        log.info("loaded %d signing keys of the tenant", len(keys))

    def _discover(self) -> _Metadata:
        url = f"{self._entra.authority}/v2.0/.well-known/openid-configuration"
        document = self._get_json(url, "openid configuration")
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
            raise AuthFailed(System.ENTRA, "discovery document lacks issuer or jwks_uri",
                             operation="read openid configuration")
        # The configured tenant may be a domain name; the issuer names the tenant id that ``tid``
        # carries (https://login.microsoftonline.com/{tenant id}/v2.0).
        segments = [part for part in urlsplit(issuer).path.split("/") if part]
        tenant_id = segments[0] if segments else self._entra.tenant_id
        return _Metadata(issuer=issuer, jwks_uri=jwks_uri, tenant_id=tenant_id)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        operation = f"read {what}"
        try:
            response = self._session.get(url)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TransientError(System.ENTRA, f"{what} unreachable: {type(exc).__name__}",
                                 operation=operation) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(System.ENTRA, f"{what} unavailable",
                                 status=response.status_code, operation=operation)
        if response.status_code != 200:
            # A wrong tenant or authority host: a setting to fix, not a caller to refuse.
            raise AuthFailed(System.ENTRA, f"{what} not found", status=response.status_code,
                             operation=operation)
        try:
            document = response.json()
        except ValueError as exc:
            raise TransientError(System.ENTRA, f"{what} is not JSON", operation=operation) from exc
        if not isinstance(document, dict):
            raise TransientError(System.ENTRA, f"{what} is not a JSON object", operation=operation)
        return document


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header or not authorization_header.strip():
        raise Unauthorized("no bearer token")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(ch.isspace() for ch in token):
        raise Unauthorized("malformed authorization header")
    if token.count(".") != 2:
        raise Unauthorized("malformed token")
    return token
