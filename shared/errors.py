"""The connector's error taxonomy: every failure is classified once, here, and acted on by class.

```
AppError                        base; .retryable, .category
├── ConfigError                 missing or invalid app setting          config     not retryable
├── MessageFormatError          undecodable queue message or HTTP body  input      not retryable
├── DomainError                 a business rule refused the request     domain     not retryable
├── Unauthorized                a caller's bearer token was refused     auth       not retryable
└── IntegrationError            talking to another system failed; carries system, status,
    │                           request_id, operation and a scrubbed detail
    ├── AuthFailed              401/403, or an MSAL error result        config     not retryable
    ├── NotFound                404                                     data       not retryable
    ├── BadRequest              400/422: our request is wrong           bug        not retryable
    ├── PreconditionFailed      412 ETag lost, 409 conflict             race       re-read, retry
    └── TransientError          timeouts, connection errors, 5xx, 408   transient  retryable
        ├── RateLimited         429 / service protection; .retry_after_s
        └── WaitTooLong         the server asks for a wait longer than a function may hold:
                                give the work back to the queue (or the next timer tick)
```
"""

from __future__ import annotations

from enum import StrEnum


class System(StrEnum):
    DATAVERSE = "dataverse"
    DOTDIGITAL = "dotdigital"
    ENTRA = "entra"
    TABLES = "tables"
    SERVICEBUS = "servicebus"


class AppError(Exception):
    retryable: bool = False
    category: str = "internal"


class ConfigError(AppError):
    category = "config"


class MessageFormatError(AppError):
    category = "input"


class DomainError(AppError):
    category = "domain"


class Unauthorized(AppError):
    """A caller's bearer token was refused: missing, malformed, forged, expired, not for this API,
    or not a user's. An HTTP function answers 401; the same token can never succeed, so it is
    permanent. ``reason`` is short and never contains the token; ``code`` is Entra's error code
    (``AADSTS...``) when Entra refused the token in an on-behalf-of exchange."""

    category = "auth"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        self.reason = reason
        self.code = code
        super().__init__(f"{reason} ({code})" if code else reason)


class IntegrationError(AppError):
    category = "integration"

    def __init__(
        self,
        system: System,
        detail: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        operation: str | None = None,
        code: str | None = None,
    ) -> None:
        self.system = system
        self.detail = detail
        self.status = status
        self.request_id = request_id
        self.operation = operation
        self.code = code
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.system.value}"]
        if self.operation:
            parts.append(self.operation)
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + f": {self.detail}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class AuthFailed(IntegrationError):
    category = "config"


class NotFound(IntegrationError):
    category = "data"


class BadRequest(IntegrationError):
    category = "bug"


class PreconditionFailed(IntegrationError):
    category = "race"
    retryable = True


class TransientError(IntegrationError):
    category = "transient"
    retryable = True


class RateLimited(TransientError):
    def __init__(
        self,
        system: System,
        detail: str,
        *,
        retry_after_s: float,
        status: int | None = None,
        request_id: str | None = None,
        operation: str | None = None,
        code: str | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(
            system, detail, status=status, request_id=request_id, operation=operation, code=code
        )


class WaitTooLong(RateLimited):
    """The server asked for a longer wait than a function invocation may spend sleeping."""


def is_permanent(error: BaseException) -> bool:
    """Whether repeating the work that raised ``error`` can never succeed.

    Our request being refused (400, 403, a missing table or column), a bad setting, or a message
    that cannot be read: the same work fails the same way every time, so it is dead-lettered at
    once. Throttling, timeouts, 5xx, lost races, and anything unclassified are retried.
    """
    if isinstance(error, MessageFormatError | ConfigError | DomainError | Unauthorized):
        return True
    return isinstance(error, BadRequest | AuthFailed | NotFound)
