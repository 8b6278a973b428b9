"""People and their email addresses, with the awkward cases real data has.

An address style decides the local part: plain ``first.last``, mixed case, plus-addressing,
apostrophes (``o'brien``), ampersands, unicode letters, digits. Dynamics may hold the same address
recased or padded with spaces; a few Dynamics rows hold blank or malformed addresses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from emulators.datagen.weighted import WeightedChoice

FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Joan", "Linus", "Maria", "Tim", "Sofia", "Omar", "Priya", "Chen",
    "Fatima", "Lars", "Aoife", "Kwame", "Yuki", "Mateo", "Elena", "Noah", "Zara", "Ravi", "Ingrid",
    "Tomasz", "Leila", "Hugo", "Amara", "Finn", "Mei", "Diego", "Niamh",
)
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker",
    "Wright", "Patel", "Khan", "Nguyen", "Garcia", "Müller", "Novak", "Larsen", "Okafor", "Silva",
    "Kowalski", "Rossi", "Dubois", "Jensen", "Murphy", "Kelly", "Hughes", "Edwards", "Clarke",
)
APOSTROPHE_NAMES = ("O'Brien", "D'Angelo", "O'Neill", "D'Souza", "O'Connor")
UNICODE_NAMES = (("José", "Núñez"), ("Zoë", "Brontë"), ("Søren", "Ødegård"), ("Ana", "Peña"),
                 ("Łukasz", "Wróbel"), ("Chloé", "Lefèvre"))
DOMAINS = (
    "example.com", "example.org", "example.net", "mail.example.com", "example.co.uk",
    "contoso.example", "fabrikam.example", "northwind.example",
)
MALFORMED_ADDRESSES = (
    "not-an-email", "jane.doe@", "@example.com", "john smith@example.com", "jane@example",
    "a@@example.com", "mary.jones@example..com", "tom@ example.com",
)
BLANK_ADDRESSES = (None, "", "   ")

STYLES = ("plain", "mixed_case", "plus", "apostrophe", "ampersand", "unicode", "digits")
_STYLE_DRAW = WeightedChoice(STYLES, (55, 12, 7, 4, 2, 4, 16))
_VARIANT_DRAW = WeightedChoice(("same", "recased", "padded"), (88, 8, 4))


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    email: str
    style: str


class PeopleFactory:
    """Makes people whose addresses are unique regardless of case."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._taken: set[str] = set()
        self._suffixes: dict[str, int] = {}

    def person(self, style: str | None = None) -> Person:
        rng = self.rng
        chosen = style or _STYLE_DRAW.pick(rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if chosen == "apostrophe":
            last = rng.choice(APOSTROPHE_NAMES)
        elif chosen == "unicode":
            first, last = rng.choice(UNICODE_NAMES)
        domain = rng.choice(DOMAINS)
        local = _local_part(rng, first, last, chosen)
        email = f"{local}@{domain}"
        base_key = email.casefold()
        # Remember the last suffix per base address: probing from 1 each time is quadratic.
        suffix = self._suffixes.get(base_key, 1)
        while email.casefold() in self._taken:
            suffix += 1
            email = f"{local}{suffix}@{domain}"
        self._suffixes[base_key] = suffix
        self._taken.add(email.casefold())
        return Person(first, last, email, chosen)


def _local_part(rng: random.Random, first: str, last: str, style: str) -> str:
    plain = f"{first}.{last}".lower().replace(" ", "")
    if style == "mixed_case":
        return f"{first}.{last.upper()}" if rng.random() < 0.5 else f"{first}{last}"
    if style == "plus":
        return f"{plain}+{rng.choice(('news', 'crm', 'promo', 'test'))}"
    if style == "ampersand":
        return f"{first.lower()}&{last.lower()}"
    if style == "digits":
        return f"{plain}{rng.randint(1, 99)}"
    return plain  # plain, apostrophe and unicode keep their letters as they are


def dynamics_copy(rng: random.Random, email: str, variant: str | None = None) -> str:
    """The address as a CRM user typed it: mostly the same, sometimes recased or padded."""
    chosen = variant or _VARIANT_DRAW.pick(rng)
    if chosen == "recased":
        return email.upper() if rng.random() < 0.5 else email.swapcase()
    if chosen == "padded":
        return rng.choice((f" {email}", f"{email} ", f"  {email}  "))
    return email
