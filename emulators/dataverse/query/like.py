"""``contains``, ``startswith`` and ``endswith`` as the SQL ``LIKE`` the service runs them as."""

from __future__ import annotations

import re
from collections.abc import Callable


def like_matcher(function: str, folded: str) -> Callable[[str], bool]:
    """Matches folded values the way SQL ``LIKE`` does for contains/startswith/endswith.

    ``folded`` is the pattern in the collation's ``fold`` form, and so must the values be.
    ``%``, ``_``, ``[set]`` and ``[^set]`` in the text are wildcards, as the service documents.
    Every character is significant, trailing spaces included (LIKE on nvarchar keeps them).
    """
    if not any(char in folded for char in "%_["):
        if function == "contains":
            return lambda value: folded in value
        if function == "startswith":
            return lambda value: value.startswith(folded)
        return lambda value: value.endswith(folded)
    pattern = _like_to_regex(folded)
    if function in {"contains", "endswith"}:
        pattern = ".*" + pattern
    if function in {"contains", "startswith"}:
        pattern += ".*"
    compiled = re.compile(pattern, re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


def _like_to_regex(text: str) -> str:
    parts: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        elif char == "[" and (end := text.find("]", position + 1)) > position + 1:
            body = text[position + 1 : end]
            negated = body.startswith("^") and len(body) > 1
            if negated:
                body = body[1:]
            escaped = "".join(
                "-" if c == "-" and 0 < i < len(body) - 1 else re.escape(c)
                for i, c in enumerate(body)
            )
            parts.append(f"[{'^' if negated else ''}{escaped}]")
            position = end
        else:
            parts.append(re.escape(char))
        position += 1
    return "".join(parts)
