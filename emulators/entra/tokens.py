"""Issuing and verifying the emulated tenant's RS256 access tokens.

Every token is a v2.0 token: ``iss`` is ``{base}/{tenant}/v2.0`` (the issuer the discovery document
names), ``ver`` is ``"2.0"``. Real Entra issues v1.0 tokens (``iss`` ``https://sts.windows.net/
{tenant}/``) to v1 resources such as Dataverse; one issuer keeps validators simple and is what
``describe()`` publishes. Both ``appid`` (v1) and ``azp`` (v2) name the client, so validators of
either version find it; ``idtyp`` says ``app`` or ``user``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from emulators.clock import Clock
from emulators.entra.directory import DirectoryUser, RegisteredClient
from emulators.entra.errors import InvalidToken
from emulators.entra.keys import KeyRing

DEFAULT_LIFETIME_SECONDS = 3600
_CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class Authority:
    base_url: str
    tenant_id: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"


@dataclass
class TokenPolicy:
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS
    # Validators built on Microsoft.IdentityModel allow 5 minutes; the emulator is strict by
    # default so that an expiry test needs no guesswork. Configurable.
    clock_skew_seconds: int = 0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pairwise_subject(oid: str, client_id: str) -> str:
    """``sub`` differs per application for the same user, as Entra's pairwise subjects do."""
    return _b64url(hashlib.sha256(f"{oid}:{client_id}".encode()).digest())


class TokenIssuer:
    def __init__(self, keyring: KeyRing, clock: Clock, policy: TokenPolicy) -> None:
        self.keyring = keyring
        self.clock = clock
        self.policy = policy

    def _times(self, lifetime: int | None) -> tuple[dict[str, int], int]:
        seconds = lifetime if lifetime is not None else self.policy.lifetime_seconds
        now = int(self.clock.time())
        return {"iat": now, "nbf": now, "exp": now + seconds}, seconds

    def app_token(
        self, authority: Authority, client: RegisteredClient, audience: str, *,
        roles: list[str] | None = None, lifetime: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[str, int]:
        times, seconds = self._times(lifetime)
        claims: dict[str, Any] = {
            "aud": audience, "iss": authority.issuer, **times,
            "appid": client.client_id, "appidacr": "1", "azp": client.client_id, "azpacr": "1",
            "idtyp": "app", "oid": client.object_id, "sub": client.object_id,
            "tid": authority.tenant_id, "uti": _b64url(secrets.token_bytes(16)), "ver": "2.0",
        }
        granted = list(client.roles) if roles is None else roles
        if granted:
            claims["roles"] = granted
        return self.sign(claims, extra), seconds

    def user_token(
        self, authority: Authority, user: DirectoryUser, client_id: str, audience: str,
        scopes: list[str], *, lifetime: int | None = None, extra: Mapping[str, Any] | None = None,
    ) -> tuple[str, int]:
        times, seconds = self._times(lifetime)
        claims: dict[str, Any] = {
            "aud": audience, "iss": authority.issuer, **times,
            "appid": client_id, "appidacr": "1", "azp": client_id, "azpacr": "1",
            "idtyp": "user", "name": user.display_name, "oid": user.oid,
            "preferred_username": user.upn, "scp": " ".join(scopes),
            "sub": pairwise_subject(user.oid, client_id), "tid": authority.tenant_id,
            "upn": user.upn, "uti": _b64url(secrets.token_bytes(16)), "ver": "2.0",
        }
        return self.sign(claims, extra), seconds

    def id_token(self, authority: Authority, user: DirectoryUser, client_id: str) -> str:
        times, _ = self._times(None)
        claims = {
            "aud": client_id, "iss": authority.issuer, **times, "name": user.display_name,
            "oid": user.oid, "preferred_username": user.upn,
            "sub": pairwise_subject(user.oid, client_id), "tid": authority.tenant_id, "ver": "2.0",
        }
        return self.sign(claims)

    def sign(self, claims: dict[str, Any], extra: Mapping[str, Any] | None = None) -> str:
        for name, value in (extra or {}).items():
            # None removes a claim: negative tests need tokens that lack one.
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.keyring.signing_key
        return jwt.encode(
            claims, key.private_key, algorithm="RS256",
            headers={"typ": "JWT", "kid": key.kid, "x5t": key.kid},
        )


class TokenVerifier:
    """Checks tokens the way a resource does. Signatures are checked once per token and cached,
    because the Dataverse emulator verifies the same bearer token on every request."""

    def __init__(self, keyring: KeyRing, clock: Clock, policy: TokenPolicy) -> None:
        self.keyring = keyring
        self.clock = clock
        self.policy = policy
        self._verified: dict[str, tuple[dict[str, Any], str]] = {}

    def forget(self) -> None:
        self._verified = {}

    def signed_claims(self, token: str) -> dict[str, Any]:
        """Claims of a token whose signature is ours; nothing else is checked here."""
        cached = self._verified.get(token) if isinstance(token, str) else None
        if cached is not None:
            claims, kid = cached
            if self.keyring.find(kid) is None:  # retired by a rotation since it was cached
                raise InvalidToken(f"unknown signing key {kid!r}")
            return claims
        if not isinstance(token, str) or token.count(".") != 2:
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        algorithm = header.get("alg")
        if algorithm != "RS256":
            raise InvalidToken(f"unsupported signing algorithm {algorithm!r}")
        header_kid = header.get("kid")
        key = self.keyring.find(header_kid) if isinstance(header_kid, str) else None
        if key is None:
            raise InvalidToken(f"unknown signing key {header_kid!r}")
        try:
            claims = jwt.decode(
                token, key.public_key, algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_iss": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("signature verification failed") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified = {}
        self._verified[token] = (claims, key.kid)
        return claims

    def check_issuer_and_time(self, claims: Mapping[str, Any], authority: Authority) -> None:
        if claims.get("iss") != authority.issuer:
            raise InvalidToken(f"wrong issuer {claims.get('iss')!r}")
        if claims.get("tid") != authority.tenant_id:
            raise InvalidToken(f"wrong tenant {claims.get('tid')!r}")
        now = self.clock.time()
        skew = self.policy.clock_skew_seconds
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)):
            raise InvalidToken("token has no exp")
        if now >= expires + skew:
            raise InvalidToken("token expired")
        not_before = claims.get("nbf")
        if isinstance(not_before, (int, float)) and now < not_before - skew:
            raise InvalidToken("token not yet valid")

    def verify(self, token: str, audience: str, authority: Authority) -> dict[str, Any]:
        claims = self.signed_claims(token)
        self.check_issuer_and_time(claims, authority)
        if not audience_matches(claims.get("aud"), audience):
            raise InvalidToken(f"wrong audience {claims.get('aud')!r}")
        return dict(claims)


def audience_matches(claimed: Any, expected: str) -> bool:
    """Resources accept their identifier with or without a trailing slash."""
    wanted = expected.rstrip("/")
    values = claimed if isinstance(claimed, list) else [claimed]
    return any(isinstance(value, str) and value.rstrip("/") == wanted for value in values)
