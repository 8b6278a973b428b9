"""EntraTokenProvider with a certificate credential against the Entra ID emulator, and
``client_credential``'s reading of ENTRA_CLIENT_CERTIFICATE (PEM or base64 PKCS#12)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from emulators.cluster import EmulatorCluster
from shared.adapters.identity.certificate import client_credential
from shared.adapters.identity.entra import EntraTokenProvider
from shared.config import DataverseSettings, EntraSettings, HttpSettings
from shared.errors import AuthFailed, ConfigError, is_permanent
from tests.adapters.conftest import admin
from tests.emulators.certificates import certificate_pem, key_pem, rsa_key, self_signed

API = "api://connector"
ADA = "ada.lovelace@connectordev.onmicrosoft.com"
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL


def pfx_base64(key: rsa.RSAPrivateKey, certificate: x509.Certificate | None,
               encryption: serialization.KeySerializationEncryption | None = None,
               chain: list[x509.Certificate] | None = None) -> str:
    data = pkcs12.serialize_key_and_certificates(
        b"connector", key, certificate, chain, encryption or serialization.NoEncryption()
    )
    # Key Vault's secret value of a PKCS#12 certificate: base64, no line breaks.
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    return self_signed(key)


@pytest.fixture
def pem(key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> str:
    return key_pem(key) + certificate_pem(certificate)


def with_certificate(entra: EntraSettings, value: str) -> EntraSettings:
    return dataclasses.replace(entra, client_secret=None, client_certificate=value)


@pytest.fixture
def registered(cluster: EmulatorCluster, entra_settings: EntraSettings,
               certificate: x509.Certificate) -> None:
    """The certificate is added to the connector's app registration (its secret stays)."""
    state = admin(cluster, "entra", "GET", f"state?client_id={entra_settings.client_id}")
    client = state["clients"][0]
    client["certificates"] = [certificate_pem(certificate)]
    admin(cluster, "entra", "POST", "seed", {"clients": [client]})


# --- against the emulator ----------------------------------------------------------------------
@pytest.mark.parametrize("form", ["pem", "pkcs12"])
@pytest.mark.usefixtures("registered")
def test_a_certificate_gets_an_app_token_and_an_on_behalf_of_token(
    cluster: EmulatorCluster, entra_settings: EntraSettings, http: HttpSettings,
    dataverse_settings: DataverseSettings, key: rsa.RSAPrivateKey,
    certificate: x509.Certificate, pem: str, form: str,
) -> None:
    value = pem if form == "pem" else pfx_base64(key, certificate)
    provider = EntraTokenProvider(with_certificate(entra_settings, value), http)
    token = provider.app_token(dataverse_settings.scope)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["appid"] == entra_settings.client_id
    assert claims["aud"].rstrip("/") == dataverse_settings.url
    user = admin(cluster, "entra", "POST", "token", {"user": ADA, "audience": API})
    delegated = provider.user_token(
        user["access_token"], f"{dataverse_settings.url}/user_impersonation"
    )
    assert jwt.decode(delegated, options={"verify_signature": False})["upn"] == ADA


def test_an_unregistered_certificate_is_a_typed_auth_failure_without_key_material(
    entra_settings: EntraSettings, http: HttpSettings, dataverse_settings: DataverseSettings,
    pem: str,
) -> None:
    provider = EntraTokenProvider(with_certificate(entra_settings, pem), http)
    with pytest.raises(AuthFailed) as caught:
        provider.app_token(dataverse_settings.scope)
    assert caught.value.code == "invalid_client"
    assert "AADSTS700027" in str(caught.value)
    assert is_permanent(caught.value)
    body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert not any(line in str(caught.value) for line in body_lines)


# --- client_credential -------------------------------------------------------------------------
def test_a_secret_is_passed_as_is(entra_settings: EntraSettings) -> None:
    assert client_credential(entra_settings) == entra_settings.client_secret


def test_a_pem_credential_makes_msal_send_the_sha256_thumbprint(
    entra_settings: EntraSettings, key: rsa.RSAPrivateKey, certificate: x509.Certificate,
    pem: str,
) -> None:
    credential = client_credential(with_certificate(entra_settings, pem))
    assert isinstance(credential, dict)
    # No "thumbprint": msal then derives x5t#S256 from the certificate and signs PS256.
    assert set(credential) == {"private_key", "public_certificate"}
    assert credential["public_certificate"] == certificate_pem(certificate)
    loaded = serialization.load_pem_private_key(credential["private_key"].encode(), None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == key.private_numbers()


@pytest.mark.parametrize("arrangement", ["certificate-first", "chain", "escaped-newlines", "crlf",
                                         "traditional-key"])
def test_pem_in_any_order_with_a_chain_or_escaped_newlines_is_read(
    entra_settings: EntraSettings, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey,
    certificate: x509.Certificate, arrangement: str,
) -> None:
    text = {
        "certificate-first": certificate_pem(certificate) + key_pem(key),
        "chain": (certificate_pem(self_signed(other_key)) + key_pem(key)
                  + certificate_pem(certificate)),
        "escaped-newlines": (key_pem(key) + certificate_pem(certificate)).replace("\n", "\\n"),
        "crlf": (key_pem(key) + certificate_pem(certificate)).replace("\n", "\r\n"),
        "traditional-key": key_pem(key, private_format=TRADITIONAL) + certificate_pem(certificate),
    }[arrangement]
    credential = client_credential(with_certificate(entra_settings, text))
    assert isinstance(credential, dict)
    # Only the key's own certificate goes to msal, never the rest of the chain.
    assert credential["public_certificate"] == certificate_pem(certificate)


def test_base64_pkcs12_without_a_password_is_read(
    entra_settings: EntraSettings, key: rsa.RSAPrivateKey, certificate: x509.Certificate
) -> None:
    credential = client_credential(with_certificate(entra_settings, pfx_base64(key, certificate)))
    assert isinstance(credential, dict)
    assert credential["public_certificate"] == certificate_pem(certificate)
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert thumbprint == certificate.fingerprint(hashes.SHA1()).hex()


def bad_credentials(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, certificate: x509.Certificate
) -> dict[str, tuple[str, str]]:
    """name -> (setting value, what the error must say)."""
    encrypted = serialization.BestAvailableEncryption(b"pass-phrase")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "garbage": ("not a certificate at all", "expected PEM text"),
        "base64-garbage": (base64.b64encode(b"\x30\x03abc").decode(), "expected PEM text"),
        "certificate-only": (certificate_pem(certificate), "no PEM private key"),
        "key-only": (key_pem(key), "no PEM certificate"),
        "two-keys": (key_pem(key) + key_pem(other_key) + certificate_pem(certificate),
                     "more than one private key"),
        "encrypted-key": (key_pem(key, encrypted) + certificate_pem(certificate), "is encrypted"),
        "encrypted-traditional-key": (
            key_pem(key, encrypted, TRADITIONAL) + certificate_pem(certificate), "is encrypted"),
        "mismatched": (key_pem(other_key) + certificate_pem(certificate), "does not belong"),
        "damaged-key": ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                        + certificate_pem(certificate), "private key cannot be read"),
        "damaged-certificate": (key_pem(key) + "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                "-----END CERTIFICATE-----\n", "certificate in it cannot be read"),
        "ec-key": (key_pem(ec_key) + certificate_pem(self_signed(ec_key)), "not an RSA key"),
        "pfx-with-password": (pfx_base64(key, certificate, encrypted), "without a password"),
        # cryptography will not pair a key with a certificate not its own; a chain it carries.
        "pfx-mismatched": (pfx_base64(other_key, None, chain=[certificate]), "does not belong"),
    }


BAD = ["garbage", "base64-garbage", "certificate-only", "key-only", "two-keys", "encrypted-key",
       "encrypted-traditional-key", "mismatched", "damaged-key", "damaged-certificate", "ec-key",
       "pfx-with-password", "pfx-mismatched"]


@pytest.mark.parametrize("case", BAD)
def test_a_bad_certificate_setting_is_a_config_error_that_shows_none_of_it(
    entra_settings: EntraSettings, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey,
    certificate: x509.Certificate, case: str,
) -> None:
    value, reason = bad_credentials(key, other_key, certificate)[case]
    with pytest.raises(ConfigError) as caught:
        client_credential(with_certificate(entra_settings, value))
    message = str(caught.value)
    assert message.startswith("invalid app setting ENTRA_CLIENT_CERTIFICATE: ")
    assert reason in message
    # Nothing chained either: a library's exception could quote what it failed to parse.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    pieces = [line for line in value.replace("\\n", "\n").splitlines()
              if len(line) > 8 and not line.startswith("-----")] or [value]
    assert not any(piece in message for piece in pieces)


def test_the_provider_raises_the_config_error_when_it_first_needs_a_token(
    entra_settings: EntraSettings, http: HttpSettings, dataverse_settings: DataverseSettings,
) -> None:
    provider = EntraTokenProvider(with_certificate(entra_settings, "garbage"), http)
    with pytest.raises(ConfigError):
        provider.app_token(dataverse_settings.scope)
