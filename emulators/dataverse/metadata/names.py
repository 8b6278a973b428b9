"""How the schema's column types, requirement levels and formats are called in metadata."""

from __future__ import annotations

from collections.abc import Mapping

NAMESPACE = "Microsoft.Dynamics.CRM."
DEFAULT_LANGUAGE = 1033

# schema column type -> (AttributeType, metadata entity type)
ATTRIBUTE_TYPES: Mapping[str, tuple[str, str]] = {
    "guid": ("Uniqueidentifier", "UniqueIdentifierAttributeMetadata"),
    "string": ("String", "StringAttributeMetadata"),
    "memo": ("Memo", "MemoAttributeMetadata"),
    "int": ("Integer", "IntegerAttributeMetadata"),
    "bigint": ("BigInt", "BigIntAttributeMetadata"),
    "decimal": ("Decimal", "DecimalAttributeMetadata"),
    "float": ("Double", "DoubleAttributeMetadata"),
    "money": ("Money", "MoneyAttributeMetadata"),
    "bool": ("Boolean", "BooleanAttributeMetadata"),
    "datetime": ("DateTime", "DateTimeAttributeMetadata"),
    "dateonly": ("DateTime", "DateTimeAttributeMetadata"),
    "choice": ("Picklist", "PicklistAttributeMetadata"),
    "state": ("State", "StateAttributeMetadata"),
    "status": ("Status", "StatusAttributeMetadata"),
    "lookup": ("Lookup", "LookupAttributeMetadata"),
    "entityname": ("EntityName", "EntityNameAttributeMetadata"),
}
# Metadata entity types a client may POST to ``.../Attributes`` (lookups come with a
# relationship; state, status and keys come with the table).
CREATABLE_TYPES: Mapping[str, str] = {
    "StringAttributeMetadata": "string",
    "MemoAttributeMetadata": "memo",
    "IntegerAttributeMetadata": "int",
    "BigIntAttributeMetadata": "bigint",
    "DecimalAttributeMetadata": "decimal",
    "DoubleAttributeMetadata": "float",
    "MoneyAttributeMetadata": "money",
    "BooleanAttributeMetadata": "bool",
    "DateTimeAttributeMetadata": "datetime",
    "PicklistAttributeMetadata": "choice",
}
# Every concrete attribute type the model knows (for casts and @odata.type checks).
KNOWN_ATTRIBUTE_TYPES = frozenset(
    {name for _, name in ATTRIBUTE_TYPES.values()}
    | {"MultiSelectPicklistAttributeMetadata", "ImageAttributeMetadata", "FileAttributeMetadata",
       "ManagedPropertyAttributeMetadata"}
)
REQUIRED_LEVELS: Mapping[str, str] = {
    "none": "None", "recommended": "Recommended", "application": "ApplicationRequired",
}
REQUIRED_FROM_METADATA = {value: key for key, value in REQUIRED_LEVELS.items()}
STRING_FORMATS: Mapping[str, str] = {
    "text": "Text", "email": "Email", "url": "Url", "phone": "Phone",
    "textarea": "TextArea", "tickersymbol": "TickerSymbol", "json": "Json",
}
STRING_FORMAT_FROM_METADATA = {value: key for key, value in STRING_FORMATS.items()}
# The platform's limits and defaults of the column types the API creates.
STRING_MAX_LENGTH = (1, 4000)
MEMO_MAX_LENGTH = (1, 1_048_576)
DEFAULT_STRING_LENGTH = 100
DEFAULT_MEMO_LENGTH = 2000
INT_RANGE = (-2_147_483_648, 2_147_483_647)
BIGINT_RANGE = (-9_223_372_036_854_775_808, 9_223_372_036_854_775_807)


def type_name(short: str) -> str:
    """``StringAttributeMetadata`` -> ``Microsoft.Dynamics.CRM.StringAttributeMetadata``."""
    return NAMESPACE + short


def short_type(value: object) -> str | None:
    """The short name of an ``@odata.type`` value (with or without ``#``), or None."""
    if not isinstance(value, str):
        return None
    text = value.removeprefix("#")
    return text[len(NAMESPACE):] if text.startswith(NAMESPACE) else None
