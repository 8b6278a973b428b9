"""The query engine's one exception and the service's message texts.

Messages are the Web API's own (most come from the OData library Dataverse runs on), so clients
that match on them behave as they would against the real service.
"""

from __future__ import annotations

QUERY_ERROR_CODE = "0x80060888"
# The troubleshooting article shows an unknown property with code 0x0 (see QUERY.md).
UNKNOWN_PROPERTY_CODE = "0x0"
UNKNOWN_ATTRIBUTE_CODE = "0x80041103"


class QueryError(Exception):
    """An OData query error in the Dataverse envelope."""

    def __init__(self, message: str, *, status: int = 400, code: str = QUERY_ERROR_CODE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def envelope(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def property_not_found(name: str, logical_name: str) -> QueryError:
    return QueryError(
        f"Could not find a property named '{name}' on type "
        f"'Microsoft.Dynamics.CRM.{logical_name}'.",
        code=UNKNOWN_PROPERTY_CODE,
    )


def attribute_not_found(name: str, logical_name: str) -> QueryError:
    # Query functions name their column in a string, so the query builder (not the OData
    # parser) rejects it, with the platform's own wording.
    return QueryError(
        f"'{logical_name}' entity doesn't contain attribute with Name = '{name}' and "
        "NameMapping = 'Logical'.",
        code=UNKNOWN_ATTRIBUTE_CODE,
    )


def syntax_error(position: int, text: str) -> QueryError:
    return QueryError(f"Syntax error at position {position} in '{text}'.")


def invalid_character(char: str, position: int, text: str) -> QueryError:
    return QueryError(
        f"Syntax error: character '{char}' is not valid at position {position} in '{text}'."
    )


def expression_expected(position: int, text: str) -> QueryError:
    return QueryError(f"Expression expected at position {position} in '{text}'.")


def not_emulated(what: str) -> QueryError:
    """Something the real service accepts but this emulator does not model."""
    return QueryError(f"{what} is not supported by the Dataverse emulator.", status=501)
