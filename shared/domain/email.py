"""Email matching rules (architecture §4.1): trim, case-fold, and refuse what cannot be an address.

An address that fails here matches nothing and is counted by the caller, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 5321: 64 octets for the local part, 254 for a forward path's address.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
# Exactly the characters ``str.isspace`` accepts; one regex search instead of a Python loop over
# every character (this runs for every address read and every record a lookup returns).
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class InvalidEmail:
    reason: str


def match_key(raw: object) -> str | InvalidEmail:
    """The comparison key of an address (trimmed, case-folded), or why it cannot match anything."""
    if not isinstance(raw, str):
        return InvalidEmail("not text")
    address = raw.strip()
    if not address:
        return InvalidEmail("blank")
    if len(address) > MAX_ADDRESS_LENGTH:
        return InvalidEmail(f"longer than {MAX_ADDRESS_LENGTH} characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return InvalidEmail("no local part and domain around '@'")
    if len(local) > MAX_LOCAL_PART_LENGTH:
        return InvalidEmail(f"local part longer than {MAX_LOCAL_PART_LENGTH} characters")
    if _WHITESPACE.search(address) or "." not in domain or domain.startswith("."):
        return InvalidEmail("malformed")
    return address.casefold()
