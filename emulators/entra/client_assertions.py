"""private_key_jwt: a client authenticates with a JWT signed by a certificate registered on it.

Checks, in this order, each failure with Entra's code (``invalid_client``, 401):

1. a JWS signed RS256 or PS256 (anything else, ``none`` included, is 50027 malformed);
2. the header's ``x5t#S256`` or ``x5t`` names a certificate registered on the client (700027,
   "not registered on application"); ``x5c`` is ignored (subject name/issuer auth is not
   emulated);
3. the signature verifies with that certificate's key (700027, "failed signature validation");
4. the certificate is within its validity period (700027, "The key used is expired");
5. ``aud``, ``iss``, ``sub``, ``exp`` and ``jti`` are present, ``aud`` a single string, times
   numbers (50027);
6. ``iss`` = ``sub`` = the client id (700021);
7. ``aud`` is this tenant's token endpoint (700023);
8. ``nbf`` <= now < ``exp`` on the shared clock, with the configured skew (700024).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from emulators.entra import errors
from emulators.entra.client_certificates import (
    ClientCertificate,
    find_certificate,
    presented_thumbprint,
)
from emulators.entra.directory import RegisteredClient

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "PS256")
_REQUIRED_CLAIMS = ("aud", "iss", "sub", "exp", "jti")


@dataclass(frozen=True)
class AssertionContext:
    """What a client assertion is checked against: the token endpoints it may name, and now."""

    audiences: tuple[str, ...]
    now: float
    clock_skew_seconds: int = 0


def token_endpoints(base_url: str, tenants: tuple[str, ...]) -> tuple[str, ...]:
    """The token endpoint URLs an assertion's ``aud`` may name: the v2.0 one msal uses and the v1
    one older libraries use, with the tenant id or domain."""
    return tuple(
        f"{base_url}/{tenant}/{path}" for tenant in tenants
        for path in ("oauth2/v2.0/token", "oauth2/token")
    )


def assertion_subject(assertion: str) -> str:
    """The client id an assertion claims, unverified: RFC 7523 lets a request omit client_id."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else ""


def verify_client_assertion(
    assertion: str, client: RegisteredClient, context: AssertionContext
) -> None:
    """Raises ``EntraError`` unless ``assertion`` authenticates ``client`` now."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise errors.malformed_client_assertion() from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise errors.malformed_client_assertion()
    presented = presented_thumbprint(header)
    certificate = find_certificate(client.certificates, presented) if presented else None
    if presented is None or certificate is None:
        raise errors.client_assertion_key_not_found(
            client.client_id, presented.hex if presented else ""
        )
    claims = _signed_claims(assertion, algorithm, certificate, presented.hex)
    now = dt.datetime.fromtimestamp(context.now, tz=dt.UTC)
    if not certificate.not_before <= now <= certificate.not_after:
        raise errors.client_assertion_key_expired(
            presented.hex, certificate.not_before, certificate.not_after
        )
    _check_claims(claims, client, context)


def _signed_claims(
    assertion: str, algorithm: str, certificate: ClientCertificate, thumbprint: str
) -> dict[str, Any]:
    # PyJWS, not jwt.decode: claim checks are Entra's own below, with Entra's error codes.
    try:
        payload = jwt.PyJWS().decode(assertion, certificate.public_key, algorithms=[algorithm])
    except jwt.InvalidSignatureError:
        raise errors.client_assertion_bad_signature(
            thumbprint, certificate.not_before, certificate.not_after
        ) from None
    except jwt.PyJWTError:
        raise errors.malformed_client_assertion() from None
    try:
        claims = json.loads(payload)
    except ValueError:
        raise errors.malformed_client_assertion() from None
    if not isinstance(claims, dict):
        raise errors.malformed_client_assertion()
    return claims


def _check_claims(
    claims: Mapping[str, Any], client: RegisteredClient, context: AssertionContext
) -> None:
    if any(claims.get(name) in (None, "") for name in _REQUIRED_CLAIMS):
        raise errors.malformed_client_assertion()
    audience, expires, not_before = claims["aud"], claims["exp"], claims.get("nbf")
    # Entra refuses an audience list (e.g. issuer and token endpoint) as malformed.
    if not isinstance(audience, str) or not _is_number(expires) or (
        not_before is not None and not _is_number(not_before)
    ):
        raise errors.malformed_client_assertion()
    client_id = client.client_id.lower()
    if str(claims["iss"]).lower() != client_id or str(claims["sub"]).lower() != client_id:
        raise errors.client_assertion_wrong_application()
    wanted = audience.rstrip("/").lower()
    if wanted not in (value.rstrip("/").lower() for value in context.audiences):
        raise errors.client_assertion_wrong_audience()
    skew = context.clock_skew_seconds
    if context.now >= expires + skew or (
        not_before is not None and context.now < not_before - skew
    ):
        raise errors.client_assertion_outside_time_range(context.now, not_before, expires)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
