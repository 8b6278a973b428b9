"""Signing keys of the emulated tenant, published as a JWKS the way Entra publishes them.

Each key is an RSA-2048 pair with a self-signed certificate; as in Entra, ``kid`` equals ``x5t``
(the base64url SHA-1 thumbprint of the certificate) and the JWKS entry carries ``x5c``. Rotation
adds a new signing key and, like a real rollover, keeps the previous one published until it is
retired, so tokens signed before the rotation still verify.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate_der: bytes

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self, issuer: str) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
            "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(self.certificate_der).decode("ascii")],
            "issuer": issuer,
        }


def generate_signing_key(now: dt.datetime) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    common_name = x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.windows.net")
    name = x509.Name([common_name])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .sign(private_key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return SigningKey(kid=_b64url(certificate.fingerprint(hashes.SHA1())), private_key=private_key,
                      certificate_der=der)


class KeyRing:
    """The published keys; the newest signs. ``reset`` returns to the key made at start."""

    def __init__(self, initial: SigningKey) -> None:
        self._initial = initial
        self._keys: list[SigningKey] = [initial]

    @property
    def signing_key(self) -> SigningKey:
        return self._keys[-1]

    def find(self, kid: str) -> SigningKey | None:
        for key in self._keys:
            if key.kid == kid:
                return key
        return None

    def rotate(self, new_key: SigningKey, *, keep_previous: bool) -> None:
        self._keys = [*self._keys, new_key] if keep_previous else [new_key]

    def reset(self) -> None:
        # Key generation costs ~0.1 s; reusing the start-up key keeps per-test resets cheap.
        self._keys = [self._initial]

    def jwks(self, issuer: str) -> dict[str, Any]:
        return {"keys": [key.jwk(issuer) for key in reversed(self._keys)]}

    def kids(self) -> list[str]:
        return [key.kid for key in self._keys]
