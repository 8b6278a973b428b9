"""The app registration's credential for msal: its client secret, or its certificate.

``ENTRA_CLIENT_CERTIFICATE`` holds either PEM text (the unencrypted private key and the
certificate, in any order, possibly with the chain) or a base64 PKCS#12 file without a password,
which is what an App Service Key Vault reference to a Key Vault *certificate* yields. msal takes a
PEM private key, so PKCS#12 is converted here, once, when the msal app is built.

The dict handed to msal (1.39) has ``private_key`` and ``public_certificate`` and deliberately no
``thumbprint``: from the certificate msal computes the SHA-256 thumbprint and signs the client
assertion PS256 with ``x5t#S256``, which Entra ID accepts. A ``thumbprint`` would make msal fall
back to the SHA-1 ``x5t`` and RS256, which it keeps only for ADFS. msal also sends the certificate
as ``x5c``; Entra ignores it unless subject name/issuer authentication is set up.

Error messages name the setting and the fault, never any of its content: it holds a private key.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12

from shared.config import EntraSettings
from shared.errors import ConfigError

_SETTING = "ENTRA_CLIENT_CERTIFICATE"
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_KEY_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                         "EC PRIVATE KEY"})


def client_credential(entra: EntraSettings) -> str | dict[str, str]:
    """What msal's ``client_credential`` takes: the secret as is, or the certificate's dict."""
    if entra.client_certificate is None:
        if entra.client_secret is None:
            raise ConfigError(
                "missing app setting ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE"
            )
        return entra.client_secret
    key, certificate = load_client_certificate(entra.client_certificate)
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        "public_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }


def load_client_certificate(value: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The private key and the certificate it belongs to, from PEM text or base64 PKCS#12."""
    text = value.strip()
    if "-----BEGIN" in text:
        key, certificates = _from_pem(text)
    else:
        key, certificates = _from_pkcs12(text)
    return _checked_key(key), _certificate_of(key, certificates)


def _from_pem(text: str) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
    # A PEM pasted into a one-line setting (local.settings.json, a .env file) often carries
    # literal "\n" sequences instead of line breaks.
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    blocks = [(match[1], match[0]) for match in _PEM_BLOCK.finditer(text.replace("\r", ""))]
    keys = [block for label, block in blocks if label in _KEY_LABELS]
    certificates = [block for label, block in blocks if label == "CERTIFICATE"]
    if not keys:
        raise _invalid("it has no PEM private key; it needs the private key and the certificate")
    if len(keys) > 1:
        raise _invalid("it has more than one private key")
    if not certificates:
        raise _invalid("it has a private key but no PEM certificate")
    try:
        key = serialization.load_pem_private_key(keys[0].encode("ascii"), password=None)
    except TypeError:  # cryptography's answer to an encrypted key without a password
        raise _encrypted_key() from None
    except (ValueError, UnicodeEncodeError):
        raise _invalid("its private key cannot be read") from None
    try:
        loaded = [x509.load_pem_x509_certificate(block.encode("ascii")) for block in certificates]
    except (ValueError, UnicodeEncodeError):
        raise _invalid("a certificate in it cannot be read") from None
    return key, loaded


def _from_pkcs12(text: str) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not _looks_like_pkcs12(data):
        raise _invalid(
            "expected PEM text (private key and certificate) or a base64 PKCS#12 (.pfx) file"
        )
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, None)
    except ValueError:
        raise _invalid(
            "the PKCS#12 file cannot be opened without a password (or is damaged); export it "
            "without a password, or as PEM"
        ) from None
    if key is None:
        raise _invalid("the PKCS#12 file has no private key")
    certificates = [certificate] if certificate is not None else []
    return key, certificates + list(extra)


def _looks_like_pkcs12(data: bytes) -> bool:
    """A DER ``PFX`` sequence: ``SEQUENCE { version INTEGER 3, ... }`` (RFC 7292)."""
    if len(data) < 5 or data[0] != 0x30:
        return False
    length_bytes = data[1] & 0x7F if data[1] & 0x80 else 0
    return data[2 + length_bytes: 5 + length_bytes] == b"\x02\x01\x03"


def _checked_key(key: PrivateKeyTypes) -> rsa.RSAPrivateKey:
    # Entra ID signs and verifies client assertions with RSA (RS256/PS256) only.
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _invalid("the private key is not an RSA key; Entra ID needs an RSA certificate")
    return key


def _certificate_of(key: PrivateKeyTypes, certificates: list[x509.Certificate]) -> x509.Certificate:
    """The certificate of ``key`` among the leaf and chain; msal must send only that one."""
    wanted = _der(key.public_key())
    for certificate in certificates:
        if _der(certificate.public_key()) == wanted:
            return certificate
    raise _invalid("the private key does not belong to the certificate")


def _der(public_key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _encrypted_key() -> ConfigError:
    return _invalid(
        "the private key is encrypted; store it unencrypted (Key Vault protects the setting), "
        "or as a PKCS#12 file without a password"
    )


def _invalid(reason: str) -> ConfigError:
    return ConfigError(f"invalid app setting {_SETTING}: {reason}")
