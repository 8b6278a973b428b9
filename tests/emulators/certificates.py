"""Keys and self-signed certificates for the tests of certificate credentials: the Entra ID
emulator's client assertions, and the connector's msal certificate credential against it."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    """A new key of the size Entra takes for a certificate credential (slow: make it once per
    module, in a fixture)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(
    key: PrivateKey, *, days: float = 30, start: dt.datetime | None = None
) -> x509.Certificate:
    """A certificate of ``key`` valid for ``days`` from ``start`` (default: an hour ago)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dotdigital connector")])
    begin = start or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin).not_valid_after(begin + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: PrivateKey, encryption: serialization.KeySerializationEncryption | None = None,
            private_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(serialization.Encoding.PEM, private_format,
                             encryption or serialization.NoEncryption()).decode()
