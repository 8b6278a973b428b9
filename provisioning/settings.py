"""Where to connect and as whom: command-line options, else the app's settings.

Each value comes from its option, else from the environment variable the Functions app reads
(``DATAVERSE_URL``, ``ENTRA_TENANT_ID``, ``ENTRA_CLIENT_ID``, ``ENTRA_CLIENT_SECRET``,
``ENTRA_CLIENT_CERTIFICATE``, ``ENTRA_AUTHORITY_HOST``, ``OUTBOUND_CA_BUNDLE``), else from the
``Values`` of a ``local.settings.json`` (``--settings``, or the one in the current directory when
there is one). The app registration signs in with its secret or its certificate, exactly one;
``--client-certificate`` names a file, the setting holds the certificate itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from provisioning.errors import InputError
from shared.config import (
    DEFAULT_AUTHORITY_HOST,
    DataverseSettings,
    EntraSettings,
    HttpSettings,
)

LOCAL_SETTINGS = "local.settings.json"
# Option (argparse dest) -> app setting.
SETTINGS = {
    "dataverse_url": "DATAVERSE_URL",
    "tenant_id": "ENTRA_TENANT_ID",
    "client_id": "ENTRA_CLIENT_ID",
    "client_secret": "ENTRA_CLIENT_SECRET",
    "client_certificate": "ENTRA_CLIENT_CERTIFICATE",
    "authority_host": "ENTRA_AUTHORITY_HOST",
    "ca_bundle": "OUTBOUND_CA_BUNDLE",
}
# An operator may wait out a long Retry-After; the Functions app may not.
MAX_WAIT_S = 300.0


@dataclass(frozen=True)
class Connection:
    dataverse: DataverseSettings
    entra: EntraSettings
    http: HttpSettings


def resolve(options: Mapping[str, str | None], environ: Mapping[str, str],
            settings_file: Path | None, cwd: Path) -> Connection:
    """Raises ``InputError`` naming what is missing or wrong."""
    values, base = _file_values(settings_file, cwd)

    def value(option: str) -> tuple[str | None, Path]:
        given = options.get(option)
        if given:
            return given.strip(), cwd
        name = SETTINGS[option]
        if environ.get(name, "").strip():
            return environ[name].strip(), cwd
        from_file = values.get(name)
        return (from_file.strip() if isinstance(from_file, str) and from_file.strip() else
                None), base

    def required(option: str) -> str:
        found, _ = value(option)
        if not found:
            flag = "--" + option.replace("_", "-")
            raise InputError(f"missing {flag} (or the app setting {SETTINGS[option]})")
        return found

    url = _environment_url(required("dataverse_url"))
    authority, _ = value("authority_host")
    ca_bundle, ca_base = value("ca_bundle")
    secret, _ = value("client_secret")
    certificate = _certificate(options, value)
    if (secret is None) == (certificate is None):
        raise InputError("give exactly one of --client-secret and --client-certificate (or the "
                         "app settings ENTRA_CLIENT_SECRET, ENTRA_CLIENT_CERTIFICATE)")
    return Connection(
        dataverse=DataverseSettings(url=url),
        entra=EntraSettings(
            tenant_id=required("tenant_id"), client_id=required("client_id"),
            client_secret=secret, client_certificate=certificate,
            authority_host=_https("--authority-host", authority or DEFAULT_AUTHORITY_HOST),
        ),
        http=HttpSettings(timeout_s=60.0, ca_bundle=_ca_bundle(ca_bundle, ca_base),
                          max_attempts=5, max_wait_s=MAX_WAIT_S),
    )


def _certificate(options: Mapping[str, str | None],
                 value: Callable[[str], tuple[str | None, Path]]) -> str | None:
    """The certificate's text: read from the file an option names, or a setting's value."""
    path = options.get("client_certificate")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as problem:
            raise InputError(f"cannot read the certificate file {path}: {problem}") from None
    found, _ = value("client_certificate")
    return found


def _file_values(settings_file: Path | None, cwd: Path) -> tuple[Mapping[str, object], Path]:
    path = settings_file or cwd / LOCAL_SETTINGS
    if settings_file is None and not path.exists():
        return {}, cwd
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise InputError(f"cannot read {path}: {problem.strerror or problem}") from None
    except ValueError as problem:
        raise InputError(f"{path} is not JSON: {problem}") from None
    values = raw.get("Values") if isinstance(raw, dict) else None
    if not isinstance(values, dict):
        raise InputError(f"{path} has no Values object")
    return values, path.resolve().parent


def _https(option: str, text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise InputError(f"{option} must be an https:// URL, not {text!r}")
    return text.rstrip("/")


def _environment_url(text: str) -> str:
    url = _https("--dataverse-url", text)
    if urlsplit(url).path not in ("", "/"):
        raise InputError(
            f"--dataverse-url must be the environment URL (https://<org>.crm.dynamics.com), "
            f"without a path: {text!r}"
        )
    return url


def _ca_bundle(text: str | None, base: Path) -> str | None:
    if not text:
        return None
    path = Path(text)
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise InputError(f"the CA bundle {path} does not exist")
    return str(path)
