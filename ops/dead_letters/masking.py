"""Email addresses as an operator's screen shows them: enough to tell two apart, not to read.

``john.doe@example.com`` becomes ``j***@e***.com``: the first character of the local part and of
the domain, and the top-level domain. Dead letters are read on shared screens and pasted into
tickets, so nothing shows a whole address unless the operator asks (``--reveal``).
"""

from __future__ import annotations

import re

# Loose on purpose: whatever looks like an address in free text (an error description, a title)
# is masked, even one the sync itself would refuse.
_ADDRESS = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+")
HIDDEN = "***"


def mask_email(address: str) -> str:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        # Not an address: show its first character only, as it may still be one mistyped.
        return f"{address.strip()[:1]}{HIDDEN}" if address.strip() else ""
    name, dot, tld = domain.rpartition(".")
    if not dot or not name:
        return f"{local[0]}{HIDDEN}@{domain[0]}{HIDDEN}"
    return f"{local[0]}{HIDDEN}@{name[0]}{HIDDEN}.{tld}"


def mask_text(text: str) -> str:
    """``text`` with every address in it masked."""
    return _ADDRESS.sub(lambda match: mask_email(match.group(0)), text)
