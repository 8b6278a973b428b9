"""The metadata API's errors, in the service's envelope.

Where the reference or a public source gives a code or message it is used; the others are the
emulator's choices, listed in ``emulators/dataverse/README.md`` ("Metadata API").
"""

from __future__ import annotations

from emulators.dataverse import errors
from emulators.dataverse.errors import DataverseError
from emulators.dataverse.query import errors as query_errors

NOT_FOUND = "0x80040217"  # ObjectDoesNotExist
NOT_UNIQUE = "0x80044363"  # a table, choice or relationship name that is taken
DUPLICATE_ATTRIBUTE = "0x80047013"  # DuplicateAttributeSchemaName
INVALID_METADATA = "0x80048403"
PAYLOAD = "0x80048d19"

# Most refusals of a definition are the platform's generic invalid argument.
invalid = errors.invalid_argument


def entity_not_found(logical_name: str) -> DataverseError:
    return DataverseError(
        404, NOT_FOUND,
        f"Could not find an entity with specified entity logicalname: {logical_name}",
    )


def entity_id_not_found(metadata_id: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"Could not find an entity with specified id: "
                                          f"{metadata_id}")


def attribute_not_found(entity: str, key: str) -> DataverseError:
    return DataverseError(
        404, NOT_FOUND, f"Could not find an attribute with specified key {key} on entity "
                        f"{entity}.",
    )


def option_set_not_found(key: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"Could not find an option set with key {key}.")


def relationship_not_found(key: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"Could not find a relationship with key {key}.")


def option_not_found(value: int, where: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"The option value {value} does not exist in {where}.")


def not_unique(kind: str, name: str) -> DataverseError:
    return DataverseError(
        400, NOT_UNIQUE,
        f"A {kind} with the same name already exists: the schema name {name} is not unique.",
    )


def duplicate_attribute(schema_name: str, entity: str) -> DataverseError:
    return DataverseError(
        400, DUPLICATE_ATTRIBUTE,
        f"An attribute with the schema name {schema_name} already exists on entity {entity}.",
    )


def bad_value(where: str, expected: str) -> DataverseError:
    return DataverseError(
        400, PAYLOAD, f"Invalid value of '{where}' in the request payload: expected {expected}.",
    )


def unknown_property(name: str, type_short: str) -> DataverseError:
    return DataverseError(
        400, PAYLOAD,
        f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{type_short}'. "
        "Make sure to only use property names that are defined by the type or mark the type as "
        "open type.",
    )


def unresolved_type(name: str) -> DataverseError:
    return DataverseError(
        400, PAYLOAD,
        f"A type named '{name}' could not be resolved by the model. When a model is available, "
        "each type name must resolve to a valid type.",
    )


def missing(property_name: str, type_short: str) -> DataverseError:
    return invalid(f"The property '{property_name}' is required to create a {type_short}.")


# The query engine's wording: metadata queries go through the same OData layer as row queries.
def unknown_select(name: str, type_short: str) -> DataverseError:
    return errors.from_query(query_errors.property_not_found(name, type_short))


def query(message: str, status: int = 400) -> DataverseError:
    return errors.from_query(query_errors.QueryError(message, status=status))


def not_emulated(what: str) -> DataverseError:
    return errors.from_query(query_errors.not_emulated(what))


def global_option_set_inline() -> DataverseError:
    # Reported from a real environment: a choice column binds a global choice through the
    # GlobalOptionSet navigation property; an inline global OptionSet is refused.
    return DataverseError(
        400, INVALID_METADATA,
        "Only Local option set can be created through the attribute create. IsGlobal flag must "
        "be set to 'false'.",
    )


def binding_not_a_guid() -> DataverseError:
    # Reported from a real environment: binding a global choice by its Name key fails.
    return DataverseError(
        500, "0x80040216", "Guid should contain 32 digits with 4 dashes "
                           "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
    )


def missing_privilege(principal_id: str, privilege: str) -> DataverseError:
    return DataverseError(
        403, "0x80040220",
        f"Principal user (Id={principal_id}, type=8, roleCount=1, accessMode=0), is missing "
        f"{privilege} privilege. context.Caller={principal_id}",
    )
