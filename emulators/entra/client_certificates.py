"""Certificates registered on an application (its key credentials), as a seed gives them.

Entra finds the certificate that signed a client assertion by the thumbprint in the assertion's
header: ``x5t`` (SHA-1 of the DER certificate) or ``x5t#S256`` (SHA-256), base64url. Client
assertions are signed RS256 or PS256, so a seed may only register certificates with RSA keys.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class ClientCertificate:
    pem: str
    sha1: bytes
    sha256: bytes
    certificate: x509.Certificate = field(compare=False, repr=False)

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = self.certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked by parse_certificate
        return key

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


def parse_certificate(value: Any, where: str) -> ClientCertificate:
    """One PEM certificate with an RSA key; raises ``ValueError`` naming ``where``."""
    if not isinstance(value, str) or value.count(_PEM_CERTIFICATE) != 1:
        raise ValueError(f"{where} must be one PEM certificate ({_PEM_CERTIFICATE} ...)")
    try:
        certificate = x509.load_pem_x509_certificate(value.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f"{where} is not a readable PEM certificate") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError(f"{where} must have an RSA key: client assertions are signed RS256/PS256")
    der = certificate.public_bytes(serialization.Encoding.DER)
    return ClientCertificate(
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        sha1=hashlib.sha1(der).digest(),  # x5t is defined as SHA-1 (RFC 7515)
        sha256=hashlib.sha256(der).digest(),
        certificate=certificate,
    )


@dataclass(frozen=True)
class PresentedThumbprint:
    """The thumbprint an assertion's header names, and the hex form Entra quotes in errors."""

    digest: bytes
    sha256: bool

    @property
    def hex(self) -> str:
        return self.digest.hex().upper()


def presented_thumbprint(header: Mapping[str, Any]) -> PresentedThumbprint | None:
    """``x5t#S256`` when present (the stronger one, what msal sends), else ``x5t``."""
    for name, sha256, size in (("x5t#S256", True, 32), ("x5t", False, 20)):
        digest = _b64_digest(header.get(name))
        if digest is not None and len(digest) == size:
            return PresentedThumbprint(digest, sha256)
    return None


def find_certificate(
    certificates: Iterable[ClientCertificate], presented: PresentedThumbprint
) -> ClientCertificate | None:
    for certificate in certificates:
        if (certificate.sha256 if presented.sha256 else certificate.sha1) == presented.digest:
            return certificate
    return None


def _b64_digest(value: Any) -> bytes | None:
    # Libraries differ: base64url with or without padding (msal pads), some send standard base64.
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
