"""The admin token mint: tokens a test needs without running a flow (what a CRM page obtains).

``POST /_emulator/token`` body::

    {"audience": "api://connector",            # default: the default client's App ID URI
     "user": "<oid or upn>",                   # delegated token (scp), or
     "client_id": "<guid>",                    # app token (roles); with "user": the azp
     "scopes": ["user_impersonation"], "roles": [...], "lifetime_seconds": 3600,
     "claims": {"tid": "other", "exp": null}}  # override claims; null removes one
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulators.entra.directory import DEFAULT_CLIENT_ID, Directory, DirectoryUser, RegisteredClient

_MINT_KEYS = {"audience", "user", "client_id", "scopes", "roles", "lifetime_seconds", "claims"}


@dataclass(frozen=True)
class MintRequest:
    audience: str
    user: DirectoryUser | None
    client: RegisteredClient
    scopes: list[str]
    roles: list[str] | None
    lifetime_seconds: int | None
    claims: dict[str, Any]


def parse_mint_request(payload: Any, directory: Directory) -> MintRequest:
    """Validate the mint body; raises ``ValueError`` (the admin API answers 400)."""
    if not isinstance(payload, Mapping):
        raise ValueError("token request must be a JSON object")
    unknown = set(payload) - _MINT_KEYS
    if unknown:
        raise ValueError(f"unknown token request keys: {sorted(unknown)}")
    user_ref, client_ref = payload.get("user"), payload.get("client_id")
    if user_ref is None and client_ref is None:
        raise ValueError("give 'user' (delegated token) or 'client_id' (application token)")
    user = None
    if user_ref is not None:
        user = directory.user(str(user_ref))
        if user is None:
            raise ValueError(f"unknown user {user_ref!r}")
    client = _client(directory, client_ref)
    audience = payload.get("audience", _default_audience(directory))
    if not isinstance(audience, str) or not audience:
        raise ValueError("audience must be a non-empty string")
    scopes = _strings(payload.get("scopes", ["user_impersonation"]), "scopes")
    roles = payload.get("roles")
    lifetime = payload.get("lifetime_seconds")
    if lifetime is not None and (not isinstance(lifetime, int) or lifetime < 1):
        raise ValueError("lifetime_seconds must be a positive integer")
    claims = payload.get("claims", {})
    if not isinstance(claims, Mapping):
        raise ValueError("claims must be an object")
    return MintRequest(
        audience=audience, user=user, client=client, scopes=scopes,
        roles=None if roles is None else _strings(roles, "roles"), lifetime_seconds=lifetime,
        claims=dict(claims),
    )


def _client(directory: Directory, client_ref: Any) -> RegisteredClient:
    if client_ref is not None:
        client = directory.client(str(client_ref))
        if client is None:
            raise ValueError(f"unknown client_id {client_ref!r}")
        return client
    # A user token names the application the user signed in to; the connector's by default.
    default = directory.client(DEFAULT_CLIENT_ID) or next(iter(directory.clients.values()), None)
    if default is None:
        raise ValueError("no client registered: give client_id")
    return default


def _default_audience(directory: Directory) -> str | None:
    default = directory.client(DEFAULT_CLIENT_ID)
    return default.app_id_uri if default is not None else None


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{name} must be a list of non-empty strings")
    return list(value)
