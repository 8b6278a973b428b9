"""Dataverse errors: ``{"error": {"code": "0x...", "message": "..."}}`` with the real status codes.

Every failure inside the emulator is a ``DataverseError``; the route handlers turn it into the
envelope. The constructors below carry the documented codes and messages; where the reference
marks a code as unverified, the choice is listed in ``emulators/dataverse/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from emulators.dataverse.query.errors import QueryError
from emulators.http import Response

JSON_CONTENT_TYPE = "application/json; odata.metadata=minimal"
PAYLOAD_HELP = (
    "For more information on this error please follow this help link "
    "https://go.microsoft.com/fwlink/?linkid=2195293"
)


class DataverseError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)

    def payload(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}

    def response(self) -> Response:
        body = json.dumps(self.payload(), separators=(",", ":")).encode("utf-8")
        headers = [("Content-Type", JSON_CONTENT_TYPE), ("OData-Version", "4.0"), *self.headers]
        return Response(self.status, headers, body)


def from_query(failure: QueryError) -> DataverseError:
    """The query engine's error (which knows nothing of the envelope) as the service answers it."""
    return DataverseError(failure.status, failure.code, failure.message)


def segment_not_found(segment: str) -> DataverseError:
    return DataverseError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def no_http_resource(url: str) -> DataverseError:
    return DataverseError(
        404, "0x8006088a", f"No HTTP resource was found that matches the request URI '{url}'."
    )


def record_not_found(logical_name: str, record_id: str) -> DataverseError:
    return DataverseError(404, "0x80040217", f"{logical_name} With Id = {record_id} Does Not Exist")


def duplicate_record() -> DataverseError:
    return DataverseError(412, "0x80040237", "A record with matching key values already exists.")


def version_mismatch() -> DataverseError:
    return DataverseError(
        412, "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def query_syntax() -> DataverseError:
    return DataverseError(400, "0x80060888", "Bad Request - Error in query syntax.")


def payload_error(entity_set: str, inner: str) -> DataverseError:
    """The OData deserializer's 400: a body that does not fit the entity type."""
    return DataverseError(
        400, "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{entity_set}', "
        f"{PAYLOAD_HELP}  ----> InnerException : {inner}",
    )


def unknown_property(entity_set: str, logical_name: str, name: str) -> DataverseError:
    return payload_error(
        entity_set,
        f"Microsoft.OData.ODataException: The property '{name}' does not exist on type "
        f"'Microsoft.Dynamics.CRM.{logical_name}'. Make sure to only use property names that are "
        "defined by the type or mark the type as open type.",
    )


def undeclared_navigation(name: str) -> DataverseError:
    return DataverseError(
        400, "0x80048d19",
        f"An undeclared property '{name}' which only has property annotations in the payload but "
        "no property value was found in the payload. In OData, only declared navigation "
        "properties and declared named streams can be represented as properties without values.",
    )


def literal_type(entity_set: str, value: object, edm_type: str) -> DataverseError:
    literal = json.dumps(value) if not isinstance(value, str) else value
    return payload_error(
        entity_set,
        f"Microsoft.OData.ODataException: Cannot convert the literal '{literal}' to the expected "
        f"type '{edm_type}'.",
    )


def validation(message: str) -> DataverseError:
    return DataverseError(400, "0x80044331", f"A validation error occurred. {message}")


def invalid_argument(message: str) -> DataverseError:
    return DataverseError(400, "0x80040203", message)


def url_too_long(limit: int) -> DataverseError:
    return DataverseError(
        414, "0x80060888", f"The request URL is longer than the limit of {limit} characters."
    )


def unauthorized() -> DataverseError:
    return DataverseError(401, "0x80072560", "The user is not authenticated.")
