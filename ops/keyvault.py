"""Key Vault references in app settings, read the way the Functions host reads them.

The deployed app's secrets (the app registration's credential, the dotdigital API passwords)
are ``@Microsoft.KeyVault(...)`` references that only the Functions host resolves. The console
reads them itself, as the signed-in operator (``DefaultAzureCredential``: the Azure CLI login),
who needs *Key Vault Secrets User* on the vault. One REST call per reference; no SDK is added
for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from azure.core.credentials import TokenCredential

_REFERENCE = re.compile(r"^\s*@Microsoft\.KeyVault\((?P<body>.*)\)\s*$", re.IGNORECASE)
API_VERSION = "7.4"
# Settings without which the console cannot reach Dataverse at all.
ESSENTIAL = ("ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_CERTIFICATE")


def secret_url(value: str) -> str | None:
    """The secret's URL for a Key Vault reference; None when ``value`` is not one."""
    found = _REFERENCE.match(value)
    if found is None:
        return None
    parts = dict(part.split("=", 1) for part in found.group("body").split(";") if "=" in part)
    parts = {name.strip().lower(): item.strip() for name, item in parts.items()}
    if parts.get("secreturi"):
        return parts["secreturi"]
    if parts.get("vaultname") and parts.get("secretname"):
        url = f"https://{parts['vaultname']}.vault.azure.net/secrets/{parts['secretname']}"
        return f"{url}/{parts['secretversion']}" if parts.get("secretversion") else url
    return None


@dataclass
class Resolved:
    values: dict[str, str]
    problems: dict[str, str] = field(default_factory=dict)  # setting -> why it was not read


def resolve_references(
    values: Mapping[str, str], credential: Callable[[], TokenCredential], *,
    timeout_s: float = 30.0, session: requests.Session | None = None,
) -> Resolved:
    """``values`` with every Key Vault reference replaced by its secret. A reference that
    cannot be read is left out (reported in ``problems``), so nothing sends it as a password."""
    urls = {name: url for name, value in values.items() if (url := secret_url(value))}
    resolved = Resolved({name: value for name, value in values.items() if name not in urls})
    if not urls:
        return resolved
    token_source = credential()
    http = session or requests.Session()
    for name, url in sorted(urls.items()):
        host = urlsplit(url).hostname or ""
        # The vault's audience is its DNS suffix: vault.azure.net, vault.azure.cn, ...
        scope = f"https://{host.split('.', 1)[-1]}/.default"
        try:
            token = token_source.get_token(scope).token
            response = http.get(url.rstrip("/"), params={"api-version": API_VERSION},
                                headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)
        except Exception as error:  # any failure leaves this one setting out, and says why
            resolved.problems[name] = f"{type(error).__name__}: {error}"
            continue
        if response.status_code != 200:
            resolved.problems[name] = f"Key Vault answered {response.status_code}"
            continue
        secret = response.json().get("value")
        if not isinstance(secret, str):
            resolved.problems[name] = "Key Vault's answer holds no value"
            continue
        resolved.values[name] = secret
    return resolved
