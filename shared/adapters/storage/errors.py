"""Failures of ``azure-data-tables`` calls, classified once into the connector's taxonomy."""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import (
    AuthFailed,
    BadRequest,
    IntegrationError,
    NotFound,
    PreconditionFailed,
    System,
    TransientError,
)

_BY_STATUS: dict[int, type[IntegrationError]] = {
    400: BadRequest,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    408: TransientError,
    409: PreconditionFailed,
    412: PreconditionFailed,
    413: BadRequest,
    429: TransientError,
}


def table_error(error: AzureError, operation: str) -> IntegrationError:
    """The taxonomy error for ``error``; the caller raises it ``from`` the original."""
    status: int | None = None
    request_id: str | None = None
    code: str | None = None
    cls: type[IntegrationError]
    if isinstance(error, ResourceModifiedError | ResourceExistsError):
        cls = PreconditionFailed
    elif isinstance(error, ResourceNotFoundError):
        cls = NotFound
    elif isinstance(error, ClientAuthenticationError):
        cls = AuthFailed
    elif isinstance(error, ServiceRequestError | ServiceResponseError):
        cls = TransientError  # no answer (connection refused, reset, timeout): safe to retry
    elif isinstance(error, HttpResponseError):
        cls = TransientError if (error.status_code or 500) >= 500 else BadRequest
    else:
        cls = TransientError
    if isinstance(error, HttpResponseError):
        status = error.status_code
        error_code = getattr(error, "error_code", None)
        code = str(error_code) if error_code else None
        headers = getattr(error.response, "headers", None) or {}
        request_id = headers.get("x-ms-request-id")
        if status in _BY_STATUS and cls in (BadRequest, TransientError):
            cls = _BY_STATUS[status]
    # The SDK's message can quote entity keys (account ids) but never values or secrets; keep
    # only its first line, which names the error.
    detail = (str(error.message) if getattr(error, "message", None) else type(error).__name__)
    detail = detail.splitlines()[0][:300] if detail else type(error).__name__
    return cls(System.TABLES, detail, status=status, request_id=request_id,
               operation=operation, code=code)
