"""``local.settings.json`` and ``%SETTING%`` binding expressions, resolved as the host does."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ConfigError

_EXPRESSION = re.compile(r"%([^%]+)%")


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """The ``Values`` of a local settings file (app settings) and its ``Host`` section."""

    values: Mapping[str, str] = field(repr=False)
    host: Mapping[str, object] = field(default_factory=dict)
    source: str = "<memory>"

    def resolve(self, expression: str, *, what: str) -> str:
        """Replace every ``%NAME%`` in a binding value; a missing setting is a ``ConfigError``."""

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            value = self.values.get(name)
            if value is None or value == "":
                raise ConfigError(
                    f"missing app setting {name}: {what} uses %{name}% but {self.source}"
                    " does not set it"
                )
            return value

        return _EXPRESSION.sub(lookup, expression)

    def apply_to(self, environ: MutableMapping[str, str]) -> None:
        """Put the Values into the environment, as the host does for its worker."""
        environ.update(self.values)


def load_local_settings(path: str | Path) -> LocalSettings:
    """Read a ``local.settings.json``; raises ``ConfigError`` on a bad file."""
    source = Path(path)
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"local settings file {source} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"local settings file {source} is not valid JSON: {error}") from None
    return parse_local_settings(raw, source=str(source))


def parse_local_settings(raw: object, *, source: str = "<memory>") -> LocalSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object with a Values section")
    if raw.get("IsEncrypted"):
        raise ConfigError(f"{source}: encrypted settings are not supported (set IsEncrypted false)")
    values = raw.get("Values", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: Values must be an object of strings")
    for name, value in values.items():
        if not isinstance(value, str):
            raise ConfigError(
                f"{source}: setting {name} must be a string, got {type(value).__name__}"
            )
    host = raw.get("Host", {})
    if not isinstance(host, dict):
        raise ConfigError(f"{source}: Host must be an object")
    return LocalSettings(values=dict(values), host=dict(host), source=source)


def environment_settings(environ: Mapping[str, str] | None = None) -> LocalSettings:
    """Settings from the process environment (when no file is given)."""
    values = dict(os.environ if environ is None else environ)
    return LocalSettings(values=values, source="the environment")
