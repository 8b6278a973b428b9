"""Who may read and write which rows: system users, one access depth per table, row owners.

A simple, strict model of Dataverse's role-based security (see ``README.md``, "Security"):

- Application tokens (``idtyp`` ``app``) act as an application user with a System
  Administrator-like role: every row of every table.
- A delegated token (``idtyp`` ``user``) maps to a seeded system user by its ``oid``. Each seeded
  user has one depth per table: ``organization`` (every row), ``user`` (rows the user owns,
  ``_ownerid_value``) or ``none``. A table missing from the seed is ``none``; a user who is not
  seeded has no role at all, so every table is ``none`` (403, as Dataverse refuses a user
  without a role).
- The depth governs reads, creates, updates and deletes alike.
- Security is enforced once a seed has named system users (a ``users`` section, even an empty
  one); a reset switches it off, and then every valid token reaches every row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from emulators.dataverse.errors import DataverseError
from emulators.dataverse.schema import Table
from emulators.dataverse.store import Row

Depth = Literal["none", "user", "organization"]
DEPTHS: tuple[Depth, ...] = ("none", "user", "organization")
OWNER_COLUMN = "ownerid"
OWNER_VALUE = "_ownerid_value"
PRIVILEGE_CODE = "0x80040220"
# Object type codes of the standard tables; custom tables get 10000 + their position.
OBJECT_TYPE_CODES = {"account": 1, "contact": 2, "lead": 4, "annotation": 5}
# What each kind of operation needs: the privilege prefix and the record access right.
PRIVILEGES = {
    "Read": "ReadAccess", "Create": "CreateAccess", "Write": "WriteAccess",
    "Delete": "DeleteAccess",
}
Privilege = Literal["Read", "Create", "Write", "Delete"]
_USER_KEYS = frozenset({"oid", "upn", "systemuserid", "read"})


@dataclass(frozen=True)
class SystemUser:
    oid: str
    systemuserid: str
    upn: str | None = None
    read: Mapping[str, Depth] = field(default_factory=dict)  # by table logical name

    def to_seed(self) -> dict[str, Any]:
        seed: dict[str, Any] = {"oid": self.oid, "systemuserid": self.systemuserid}
        if self.upn is not None:
            seed["upn"] = self.upn
        seed["read"] = dict(sorted(self.read.items()))
        return seed


@dataclass
class Security:
    """The environment's system users; ``enforced`` once any seed named them."""

    enforced: bool = False
    users: dict[str, SystemUser] = field(default_factory=dict)  # by oid (lower case)

    def clear(self) -> None:
        self.enforced = False
        self.users = {}

    def add(self, users: list[SystemUser]) -> None:
        self.enforced = True
        for user in users:
            self.users[user.oid] = user

    def export(self) -> list[dict[str, Any]]:
        return [user.to_seed() for user in sorted(self.users.values(), key=lambda u: u.oid)]


@dataclass(frozen=True)
class Access:
    """What one caller may do. ``depths`` is ``None`` for full access (application users, or
    any caller while security is not enforced)."""

    principal_id: str  # the caller's systemuserid: owner of the rows it creates
    depths: Mapping[str, Depth] | None = None
    schema_tables: Mapping[str, Table] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.depths is None

    def depth(self, table: Table) -> Depth:
        if self.depths is None:
            return "organization"
        return self.depths.get(table.logical_name, "none")

    def require(self, table: Table, privilege: Privilege) -> None:
        """403 when the caller holds no depth at all for ``table``."""
        if self.depth(table) == "none":
            raise self._missing_privilege(table, privilege)

    def owner_filter(self, table: Table) -> str | None:
        """The owner every visible row must have, or ``None`` when every row is visible."""
        self.require(table, "Read")
        return self.principal_id if self.depth(table) == "user" else None

    def can_reach(self, table: Table, row: Row) -> bool:
        depth = self.depth(table)
        return depth == "organization" or (
            depth == "user" and row.get(OWNER_VALUE) == self.principal_id
        )

    def check_row(self, table: Table, row: Row, privilege: Privilege) -> None:
        """403 when ``row`` is outside the caller's depth for ``table``."""
        self.require(table, privilege)
        if not self.can_reach(table, row):
            raise self._record_denied(table, row, privilege)

    def _missing_privilege(self, table: Table, privilege: Privilege) -> DataverseError:
        depths = self.depths or {}
        granted = sum(1 for depth in depths.values() if depth != "none")
        roles = 1 if depths else 0
        name = f"prv{privilege}{table.schema_name}"
        privilege_id = uuid.uuid5(uuid.NAMESPACE_URL, f"dataverse-privilege/{name}")
        return DataverseError(
            403, PRIVILEGE_CODE,
            f"Principal user (Id={self.principal_id}, type=8, roleCount={roles}, "
            f"privilegeCount={granted * len(PRIVILEGES)}, accessMode=0), is missing {name} "
            f"privilege (Id={privilege_id}) on OTC={self._object_type_code(table)} for entity "
            f"'{table.logical_name}' (LocalizedName='{table.display_name}'). "
            f"context.Caller={self.principal_id}",
        )

    def _record_denied(self, table: Table, row: Row, privilege: Privilege) -> DataverseError:
        right = PRIVILEGES[privilege]
        key = row[table.primary_key]
        details = {
            "CallerPrincipal": {"PrincipalId": self.principal_id, "Type": 8,
                                "IsUserPrincipal": True},
            "OwnerPrincipal": {"PrincipalId": row.get(OWNER_VALUE), "Type": 8,
                               "IsUserPrincipal": True},
            "ObjectId": key, "ObjectTypeCode": self._object_type_code(table),
            "EntityName": table.logical_name, "RightsToCheck": right,
            "RoleAccessRights": "None", "GrantedAccessRights": "None",
            "Messages": ["PrincipalHasOwnerPrincipalWithAtLeastBasicPrivilegeDepth = False",
                         "MinimumPrivilegeDepthRequired = Local"],
        }
        return DataverseError(
            403, PRIVILEGE_CODE,
            f"Principal with id {self.principal_id} does not have {right} right(s) for record "
            f"with id {key} of entity {table.logical_name}. "
            f"Details: {json.dumps(details, separators=(',', ':'))}",
        )

    def _object_type_code(self, table: Table) -> int:
        known = OBJECT_TYPE_CODES.get(table.logical_name)
        if known is not None:
            return known
        custom = sorted(name for name in self.schema_tables if name not in OBJECT_TYPE_CODES)
        return 10_000 + (custom.index(table.logical_name) if table.logical_name in custom else 0)


def is_application(claims: Mapping[str, Any]) -> bool:
    """App-only tokens say ``idtyp: app``; without ``idtyp``, a token with no ``scp`` is one."""
    kind = claims.get("idtyp")
    if kind is not None:
        return bool(kind == "app")
    return "scp" not in claims


def parse_users(
    raw: Any, tables: Mapping[str, Table], default_id: Callable[[str], str]
) -> list[SystemUser]:
    """The ``users`` section of a seed; ``ValueError`` naming the first problem."""
    if not isinstance(raw, list):
        raise ValueError("users must be a list of system users")
    users: list[SystemUser] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"users[{index}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be an object")
        unknown = set(item) - _USER_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        oid = _guid(item.get("oid"), f"{where}.oid")
        if oid in seen:
            raise ValueError(f"{where}.oid {oid} is seeded twice")
        seen.add(oid)
        systemuserid = (
            _guid(item["systemuserid"], f"{where}.systemuserid")
            if item.get("systemuserid") is not None else default_id(oid)
        )
        upn = item.get("upn")
        if upn is not None and (not isinstance(upn, str) or "@" not in upn):
            raise ValueError(f"{where}.upn must look like user@domain")
        users.append(SystemUser(
            oid=oid, systemuserid=systemuserid, upn=upn,
            read=_depths(item.get("read", {}), tables, f"{where}.read"),
        ))
    return users


def _depths(raw: Any, tables: Mapping[str, Table], where: str) -> dict[str, Depth]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must map table logical names to none, user or organization")
    depths: dict[str, Depth] = {}
    for name, depth in raw.items():
        table = tables.get(name)
        if table is None:
            raise ValueError(
                f"{where}: unknown table {name!r} (use logical names: {sorted(tables)})"
            )
        if depth not in DEPTHS:
            raise ValueError(f"{where}.{name} must be one of {list(DEPTHS)}")
        if depth == "user" and OWNER_COLUMN not in table.columns:
            raise ValueError(
                f"{where}.{name}: {name} is organization-owned, so its depth is none or "
                "organization"
            )
        depths[name] = depth
    return depths


def _guid(value: Any, where: str) -> str:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) and len(value) == 36 else _fail()
    except ValueError:
        raise ValueError(f"{where} must be a GUID") from None


def _fail() -> str:
    raise ValueError
