"""String comparison under the environment's SQL Server collation.

Dataverse runs ``$filter`` and ``$orderby`` as SQL, so strings compare the way the database
collation says: case-insensitively always, accent-insensitively under ``CI_AI`` (English 1033 is
``Latin1_General_CI_AI``) and accent-sensitively under ``CI_AS`` (Finnish, Swedish and a few
other languages). Two forms of a string come out of a collation:

- ``fold``: case folded (and accents dropped under ``CI_AI``), every character kept. ``LIKE``
  (contains/startswith/endswith) matches on this, because on nvarchar it keeps trailing spaces.
- ``key``: ``fold`` without trailing U+0020 SPACE. ``=``, ``<>`` and ``IN`` compare on this
  (ANSI padding); no other whitespace is ever ignored.
- ``order``: what ``<``, ``>``, ``Between`` and ``$orderby`` compare. Under CI_AI it is the key;
  under CI_AS it is (accent-free key, key), so accents only break ties between otherwise equal
  letters (``e`` < ``é`` < ``f``), as SQL Server's secondary weights do. Two values order as
  equal exactly when their keys are equal.

Keys compare by code point, so letters, digits and punctuation order by their code points rather
than by the Windows collation's weight tables (``-`` and ``'`` are not ignored, for instance).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Distinct non-ASCII values seen in a run stay folded; ASCII never reaches the cache.
_CACHE_SIZE = 1 << 16


@lru_cache(maxsize=_CACHE_SIZE)
def _fold_accent_sensitive(text: str) -> str:
    # Canonically equivalent spellings (precomposed or combining) are one value to SQL Server.
    return unicodedata.normalize("NFC", text.casefold())


@lru_cache(maxsize=_CACHE_SIZE)
def _fold_accent_insensitive(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.casefold())
    bare = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    return unicodedata.normalize("NFC", bare)


@dataclass(frozen=True)
class Collation:
    name: str
    accent_insensitive: bool

    @property
    def fold(self) -> Callable[[str], str]:
        """The ``LIKE`` form of a string: case (and, under AI, accents) folded, spaces kept."""
        return _fold_ai if self.accent_insensitive else _fold_as

    @property
    def key(self) -> Callable[[str], str]:
        """The equality form: ``fold`` without trailing U+0020 spaces."""
        return _key_ai if self.accent_insensitive else _key_as

    @property
    def order(self) -> Callable[[str], Any]:
        """The ordering form: the key, or under CI_AS (accent-free key, key)."""
        return _key_ai if self.accent_insensitive else _order_as


def _fold_ai(text: str) -> str:
    # ASCII has nothing to decompose and lower() is its case fold: the common path stays in C.
    return text.lower() if text.isascii() else _fold_accent_insensitive(text)


def _fold_as(text: str) -> str:
    return text.lower() if text.isascii() else _fold_accent_sensitive(text)


def _key_ai(text: str) -> str:
    if text.isascii():
        return text.lower().rstrip(" ")
    return _fold_accent_insensitive(text).rstrip(" ")


def _key_as(text: str) -> str:
    if text.isascii():
        return text.lower().rstrip(" ")
    return _fold_accent_sensitive(text).rstrip(" ")


def _order_as(text: str) -> tuple[str, str]:
    return _key_ai(text), _key_as(text)


CI_AI = Collation("CI_AI", accent_insensitive=True)
CI_AS = Collation("CI_AS", accent_insensitive=False)
DEFAULT_COLLATION = CI_AI
COLLATIONS: dict[str, Collation] = {collation.name: collation for collation in (CI_AI, CI_AS)}


def collation_named(name: object) -> Collation:
    """The collation of a config value.

    Raises:
        ValueError: not one of the supported names.
    """
    found = COLLATIONS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(
            f"collation must be one of {sorted(COLLATIONS)} (case-insensitive, accent-"
            f"insensitive or accent-sensitive, as the environment's SQL collation), not {name!r}"
        )
    return found
