"""One Web API operation as the API layer sees it, and what it cost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulators.dataverse.query import DEFAULT_COLLATION, Collation
from emulators.dataverse.security import Access, is_application
from emulators.http import Headers, Response


@dataclass
class ApiCall:
    method: str
    path: str  # after the version root, still percent-encoded
    query: str  # raw query string
    headers: Headers
    body: bytes = b""
    # Resolves a change set's ``$n`` to the entity path it created; ``None`` knows none.
    resolve_reference: Callable[[str], str] | None = None
    # What the caller may do; ``DataverseApi.execute`` sets it from the identity.
    access: Access | None = None

    @property
    def caller(self) -> Access:
        assert self.access is not None, "DataverseApi.execute sets the caller's access"
        return self.access


@dataclass
class Outcome:
    response: Response
    read: int = 0
    written: int = 0
    bulk_written: int = 0
    entity_path: str | None = None  # ``contacts(<guid>)`` of a created or updated row


@dataclass
class Identity:
    """Who is calling: the token's ``oid`` (the throttling key) and its claims."""

    oid: str
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def application(self) -> bool:
        """An app-only token (client credentials) rather than a user's delegated one."""
        return is_application(self.claims)


@dataclass
class Features:
    """Switches of the emulated environment (``POST /_emulator/config``)."""

    lead_table_enabled: bool = True
    bulk_unsupported_tables: frozenset[str] = frozenset()
    # How $filter and $orderby compare strings: the environment's SQL collation.
    collation: Collation = DEFAULT_COLLATION
