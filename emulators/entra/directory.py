"""The emulated tenant: its id and domain, registered applications and users, in seed format.

Seed document (also what ``state()`` and ``export_state()`` return)::

    {"tenant_id": "<guid>", "tenant_domain": "contoso.onmicrosoft.com",
     "clients": [{"client_id", "client_secret" (optional: none = cannot authenticate),
                  "display_name", "app_id_uri" (optional), "roles": [...],
                  "scopes": [...] (delegated scopes the app exposes; default user_impersonation),
                  "object_id" (service principal id; derived from client_id when absent),
                  "certificates": ["-----BEGIN CERTIFICATE-----...", ...] (optional: RSA
                  certificates whose keys may sign client assertions)}],
     "users": [{"oid", "upn", "display_name"}]}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.entra.client_certificates import ClientCertificate, parse_certificate

DEFAULT_TENANT_ID = "3f9a2c4e-7b1d-4e8a-9c5f-2d6b8e1a4c70"
DEFAULT_TENANT_DOMAIN = "connectordev.onmicrosoft.com"
DEFAULT_CLIENT_ID = "5b1e3d2a-8c4f-4a6e-b9d7-1f2e3c4d5a6b"
DEFAULT_CLIENT_SECRET = "connector-local-secret"
DEFAULT_APP_ID_URI = "api://connector"
DEFAULT_EXPOSED_SCOPES = ("user_impersonation",)
# Object ids of service principals are derived, so a seed need not invent them.
_SERVICE_PRINCIPAL_NAMESPACE = uuid.UUID("0d9b7f1c-4a2e-4c55-8a3b-6e0f2d1c9b84")

_CLIENT_KEYS = {"client_id", "client_secret", "display_name", "app_id_uri", "roles", "scopes",
                "object_id", "certificates"}
_USER_KEYS = {"oid", "upn", "display_name"}
_SEED_KEYS = {"tenant_id", "tenant_domain", "clients", "users"}


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str | None
    display_name: str
    app_id_uri: str | None = None
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = DEFAULT_EXPOSED_SCOPES
    object_id: str = ""
    certificates: tuple[ClientCertificate, ...] = ()

    def to_seed(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id, "client_secret": self.client_secret,
            "display_name": self.display_name, "app_id_uri": self.app_id_uri,
            "roles": list(self.roles), "scopes": list(self.scopes), "object_id": self.object_id,
            "certificates": [certificate.pem for certificate in self.certificates],
        }


@dataclass(frozen=True)
class DirectoryUser:
    oid: str
    upn: str
    display_name: str

    def to_seed(self) -> dict[str, Any]:
        return {"oid": self.oid, "upn": self.upn, "display_name": self.display_name}


@dataclass
class Directory:
    tenant_id: str = DEFAULT_TENANT_ID
    tenant_domain: str = DEFAULT_TENANT_DOMAIN
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    users: dict[str, DirectoryUser] = field(default_factory=dict)
    _users_by_upn: dict[str, DirectoryUser] = field(default_factory=dict)
    _clients_by_uri: dict[str, RegisteredClient] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Directory:
        directory = cls()
        directory.apply(parse_seed(DEFAULT_SEED))
        return directory

    def is_tenant(self, tenant: str) -> bool:
        """The tenant segment of a URL may be the tenant id or its domain, in any case."""
        lowered = tenant.lower()
        return lowered in (self.tenant_id.lower(), self.tenant_domain.lower())

    def client(self, client_id: str) -> RegisteredClient | None:
        return self.clients.get(client_id.lower())

    def user(self, oid_or_upn: str) -> DirectoryUser | None:
        lowered = oid_or_upn.strip().lower()
        return self.users.get(lowered) or self._users_by_upn.get(lowered)

    def api(self, identifier: str) -> RegisteredClient | None:
        """The registered application known by this App ID URI or client id, if any."""
        lowered = identifier.rstrip("/").lower()
        return self._clients_by_uri.get(lowered) or self.clients.get(lowered)

    def apply(self, seed: ParsedSeed) -> None:
        if seed.tenant_id is not None:
            self.tenant_id = seed.tenant_id
        if seed.tenant_domain is not None:
            self.tenant_domain = seed.tenant_domain
        for client in seed.clients:
            previous = self.clients.get(client.client_id.lower())
            if previous is not None and previous.app_id_uri:
                self._clients_by_uri.pop(previous.app_id_uri.rstrip("/").lower(), None)
            self.clients[client.client_id.lower()] = client
            if client.app_id_uri:
                self._clients_by_uri[client.app_id_uri.rstrip("/").lower()] = client
        for user in seed.users:
            previous_user = self.users.get(user.oid.lower())
            if previous_user is not None:
                self._users_by_upn.pop(previous_user.upn.lower(), None)
            self.users[user.oid.lower()] = user
            self._users_by_upn[user.upn.lower()] = user

    def to_seed(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "tenant_domain": self.tenant_domain,
            "clients": [client.to_seed() for client in self.clients.values()],
            "users": [user.to_seed() for user in self.users.values()],
        }


@dataclass(frozen=True)
class ParsedSeed:
    tenant_id: str | None
    tenant_domain: str | None
    clients: list[RegisteredClient]
    users: list[DirectoryUser]


def parse_seed(payload: Any) -> ParsedSeed:
    """Validate a whole seed before anything is applied; raises ``ValueError`` naming the fault."""
    if not isinstance(payload, Mapping):
        raise ValueError("entra seed must be a JSON object")
    unknown = set(payload) - _SEED_KEYS
    if unknown:
        raise ValueError(f"unknown entra seed keys: {sorted(unknown)}")
    tenant_id = payload.get("tenant_id")
    if tenant_id is not None:
        tenant_id = _guid(tenant_id, "tenant_id")
    tenant_domain = payload.get("tenant_domain")
    bad_domain = not isinstance(tenant_domain, str) or "." not in tenant_domain
    if tenant_domain is not None and bad_domain:
        raise ValueError("tenant_domain must be a domain name such as contoso.onmicrosoft.com")
    clients = [_parse_client(raw, index) for index, raw in enumerate(_list(payload, "clients"))]
    users = [_parse_user(raw, index) for index, raw in enumerate(_list(payload, "users"))]
    _no_duplicates([client.client_id.lower() for client in clients], "client_id")
    _no_duplicates([user.oid.lower() for user in users], "user oid")
    _no_duplicates([user.upn.lower() for user in users], "user upn")
    return ParsedSeed(tenant_id, tenant_domain, clients, users)


def _list(payload: Mapping[str, Any], key: str) -> list[Any]:
    value = payload.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"entra seed '{key}' must be a list")
    return value


def _parse_client(raw: Any, index: int) -> RegisteredClient:
    where = f"clients[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object")
    unknown = set(raw) - _CLIENT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    client_id = _guid(raw.get("client_id"), f"{where}.client_id")
    secret = raw.get("client_secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise ValueError(f"{where}.client_secret must be a non-empty string or null")
    app_id_uri = raw.get("app_id_uri")
    if app_id_uri is not None and (not isinstance(app_id_uri, str) or "://" not in app_id_uri):
        raise ValueError(f"{where}.app_id_uri must be a URI such as api://connector")
    object_id = raw.get("object_id")
    object_id = (
        _guid(object_id, f"{where}.object_id") if object_id is not None
        else str(uuid.uuid5(_SERVICE_PRINCIPAL_NAMESPACE, client_id))
    )
    return RegisteredClient(
        client_id=client_id,
        client_secret=secret,
        display_name=_text(raw.get("display_name", client_id), f"{where}.display_name"),
        app_id_uri=app_id_uri,
        roles=_names(raw.get("roles", []), f"{where}.roles"),
        scopes=_names(raw.get("scopes", list(DEFAULT_EXPOSED_SCOPES)), f"{where}.scopes"),
        object_id=object_id,
        certificates=_certificates(raw.get("certificates", []), f"{where}.certificates"),
    )


def _certificates(value: Any, where: str) -> tuple[ClientCertificate, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list of PEM certificates")
    parsed = tuple(parse_certificate(item, f"{where}[{index}]") for index, item in enumerate(value))
    _no_duplicates([certificate.sha256.hex() for certificate in parsed], f"certificate in {where}")
    return parsed


def _parse_user(raw: Any, index: int) -> DirectoryUser:
    where = f"users[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object")
    unknown = set(raw) - _USER_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    upn = _text(raw.get("upn"), f"{where}.upn")
    if "@" not in upn:
        raise ValueError(f"{where}.upn must look like user@domain")
    return DirectoryUser(
        oid=_guid(raw.get("oid"), f"{where}.oid"),
        upn=upn,
        display_name=_text(raw.get("display_name", upn), f"{where}.display_name"),
    )


def _guid(value: Any, where: str) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ValueError(f"{where} must be a GUID")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} in entra seed: {value}")
        seen.add(value)


DEFAULT_SEED: dict[str, Any] = {
    "tenant_id": DEFAULT_TENANT_ID,
    "tenant_domain": DEFAULT_TENANT_DOMAIN,
    "clients": [
        {
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "display_name": "dotdigital connector",
            "app_id_uri": DEFAULT_APP_ID_URI,
            "roles": [],
        }
    ],
    "users": [
        {
            "oid": "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01",
            "upn": f"ada.lovelace@{DEFAULT_TENANT_DOMAIN}",
            "display_name": "Ada Lovelace",
        },
        {
            "oid": "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c02",
            "upn": f"grace.hopper@{DEFAULT_TENANT_DOMAIN}",
            "display_name": "Grace Hopper",
        },
    ],
}
