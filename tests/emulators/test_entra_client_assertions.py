"""Entra ID emulator: certificate credentials (private_key_jwt client assertions) and their seed."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from emulators.cluster import EmulatorCluster
from tests.emulators.certificates import certificate_pem, key_pem, rsa_key, self_signed
from tests.emulators.conftest import Admin
from tests.emulators.test_entra import (
    ADA,
    DATAVERSE,
    CaTrustingSession,
    described,
    mint,
    post_token,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def der(certificate_pem: str) -> bytes:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return certificate.public_bytes(serialization.Encoding.DER)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def certificate(key: rsa.RSAPrivateKey) -> str:
    return certificate_pem(self_signed(key))


@pytest.fixture
def client_id(cluster: EmulatorCluster) -> str:
    return str(described(cluster)["default_client"]["client_id"])


def register(entra_admin: Admin, client_id: str, *certificates: str) -> None:
    """Adds certificates to a registered client; the seed replaces a client whole."""
    client = entra_admin.state(client_id=client_id)["clients"][0]
    client["certificates"] = [*client["certificates"], *certificates]
    entra_admin.seed({"clients": [client]})


@pytest.fixture
def registered(entra_admin: Admin, client_id: str, certificate: str) -> str:
    register(entra_admin, client_id, certificate)
    return certificate


Sign = Callable[..., str]


@pytest.fixture
def sign(
    cluster: EmulatorCluster, client_id: str, key: rsa.RSAPrivateKey, certificate: str
) -> Sign:
    """A client assertion as msal builds one; keyword arguments change or (None) drop claims."""

    def build(
        *, signing_key: Any = None, named: str | None = None, algorithm: str = "PS256",
        thumbprint: str = "x5t#S256", **overrides: Any,
    ) -> str:
        now = int(cluster.clock.time())
        claims: dict[str, Any] = {
            "aud": described(cluster)["token_endpoint"], "iss": client_id, "sub": client_id,
            "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 600,
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        encoded = der(named or certificate)
        digest = hashlib.sha256(encoded) if thumbprint == "x5t#S256" else hashlib.sha1(encoded)
        return jwt.encode(claims, signing_key if signing_key is not None else key,
                          algorithm=algorithm, headers={thumbprint: b64url(digest.digest())})

    return build


def assertion_form(client_id: str | None, assertion: str, **extra: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "scope": f"{DATAVERSE}/.default",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **extra}
    if client_id is not None:
        form["client_id"] = client_id
    return form


class RecordingSession(CaTrustingSession):
    """Keeps the client assertions msal posts, to see which header it built."""

    def __init__(self, ca_bundle: str) -> None:
        super().__init__(ca_bundle)
        self.assertions: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        if isinstance(data, dict) and data.get("client_assertion"):
            self.assertions.append(data["client_assertion"])
        return super().request(method, url, *args, **kwargs)


def certificate_app(
    cluster: EmulatorCluster, client_id: str, credential: dict[str, str],
    session: CaTrustingSession | None = None,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=described(cluster)["authority"],
        instance_discovery=False, http_client=session or CaTrustingSession(cluster.ca_bundle),
    )


# --- accepted ----------------------------------------------------------------------------------
@pytest.mark.parametrize("with_thumbprint", [False, True], ids=["x5t#S256-PS256", "x5t-RS256"])
def test_msal_with_a_registered_certificate_gets_app_and_on_behalf_of_tokens(
    cluster: EmulatorCluster, entra_admin: Admin, client_id: str, key: rsa.RSAPrivateKey,
    registered: str, with_thumbprint: bool,
) -> None:
    # Without "thumbprint" msal signs PS256 with x5t#S256; with one, RS256 with the SHA-1 x5t.
    credential = {"private_key": key_pem(key), "public_certificate": registered}
    if with_thumbprint:
        credential = {"private_key": key_pem(key),
                      "thumbprint": hashlib.sha1(der(registered)).hexdigest()}
    session = RecordingSession(cluster.ca_bundle)
    app = certificate_app(cluster, client_id, credential, session)
    result = app.acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    assert "access_token" in result, result
    header = jwt.get_unverified_header(session.assertions[0])
    if with_thumbprint:
        assert header["alg"] == "RS256" and "x5t" in header and "x5t#S256" not in header
    else:
        assert header["alg"] == "PS256" and "x5t#S256" in header and "x5t" not in header
    claims = cluster.entra.verify_access_token(result["access_token"], DATAVERSE)
    assert claims["appid"] == client_id
    delegated = app.acquire_token_on_behalf_of(
        user_assertion=mint(entra_admin, user=ADA), scopes=[f"{DATAVERSE}/user_impersonation"]
    )
    assert "access_token" in delegated, delegated
    assert cluster.entra.verify_access_token(delegated["access_token"], DATAVERSE)["upn"] == ADA


@pytest.mark.parametrize(
    ("algorithm", "thumbprint"),
    [("RS256", "x5t"), ("PS256", "x5t"), ("RS256", "x5t#S256"), ("PS256", "x5t#S256")],
)
def test_assertions_signed_rs256_or_ps256_with_either_thumbprint_are_accepted(
    cluster: EmulatorCluster, client_id: str, registered: str, sign: Sign, algorithm: str,
    thumbprint: str,
) -> None:
    assertion = sign(algorithm=algorithm, thumbprint=thumbprint)
    response = post_token(cluster, assertion_form(client_id, assertion))
    assert response.status_code == 200, response.text


def test_an_assertion_may_name_the_tenant_domain_or_the_v1_endpoint_and_omit_client_id(
    cluster: EmulatorCluster, registered: str, sign: Sign
) -> None:
    info = described(cluster)
    for audience in (f"{info['base_url']}/ConnectorDev.onmicrosoft.com/oauth2/v2.0/token",
                     f"{info['authority']}/oauth2/token"):
        # RFC 7523: without client_id the client is the assertion's subject.
        response = post_token(cluster, assertion_form(None, sign(aud=audience)))
        assert response.status_code == 200, response.text


def test_a_client_keeps_its_secret_beside_certificates(
    cluster: EmulatorCluster, client_id: str, registered: str
) -> None:
    client = described(cluster)["default_client"]
    response = post_token(cluster, {
        "grant_type": "client_credentials", "scope": f"{DATAVERSE}/.default",
        "client_id": client_id, "client_secret": client["client_secret"],
    })
    assert response.status_code == 200


# --- refused -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "code", "text"),
    [
        ({"exp": -1}, 700024, "Client assertion is not within its valid time range. Current time:"),
        ({"nbf": 300}, 700024, "not within its valid time range"),
        ({"aud": "issuer"}, 700023, "Client assertion audience claim does not match Realm issuer"),
        ({"aud": "list"}, 50027, "JWT token is invalid or malformed."),
        ({"iss": "other"}, 700021, "doesn't match 'client_id' parameter"),
        ({"sub": "other"}, 700021, "doesn't match 'client_id' parameter"),
        ({"jti": None}, 50027, "JWT token is invalid or malformed."),
        ({"exp": None}, 50027, "JWT token is invalid or malformed."),
        ({"signing_key": "other"}, 700027,
         "Client assertion failed signature validation. [Reason - The provided signature value "
         "did not match the expected signature value., Thumbprint of key used by client: '"),
        ({"signing_key": "other", "named": "other"}, 700027,
         "The certificate with identifier used to sign the client assertion is not registered on "
         "application. [Reason - The key was not found., Thumbprint of key used by client: '"),
        ({"thumbprint": "kid"}, 700027, "is not registered on application"),
        ({"algorithm": "HS256"}, 50027, "JWT token is invalid or malformed."),
        ({"algorithm": "none"}, 50027, "JWT token is invalid or malformed."),
    ],
    ids=["expired", "not-yet-valid", "wrong-aud", "aud-list", "wrong-iss", "wrong-sub", "no-jti",
         "no-exp", "wrong-signature", "unknown-thumbprint", "no-thumbprint", "hs256", "alg-none"],
)
def test_bad_client_assertions_are_refused_with_entra_codes(
    cluster: EmulatorCluster, client_id: str, registered: str, sign: Sign,
    other_key: rsa.RSAPrivateKey, change: dict[str, Any], code: int, text: str,
) -> None:
    now = int(cluster.clock.time())
    info = described(cluster)
    values: dict[str, Any] = {
        "exp": now - 1 if change.get("exp") == -1 else change.get("exp", now + 600),
        "aud": {"issuer": info["issuer"], "list": [info["token_endpoint"], info["issuer"]]}.get(
            change.get("aud", ""), info["token_endpoint"]),
    }
    if "nbf" in change:
        values["nbf"] = now + change["nbf"]
    for name in ("iss", "sub", "jti", "thumbprint", "algorithm"):
        if name in change:
            values[name] = change[name]
    if change.get("signing_key") == "other":
        values["signing_key"] = other_key
    if change.get("named") == "other":
        values["named"] = certificate_pem(self_signed(other_key))
    if values.get("algorithm") == "HS256":
        values["signing_key"] = b"k" * 32
    if values.get("algorithm") == "none":
        values["signing_key"] = ""
    response = post_token(cluster, assertion_form(client_id, sign(**values)))
    assert response.status_code == 401
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("invalid_client", [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert text in body["error_description"]


def test_the_thumbprint_entra_quotes_is_the_one_the_client_sent(
    cluster: EmulatorCluster, client_id: str, registered: str, sign: Sign,
    other_key: rsa.RSAPrivateKey,
) -> None:
    unregistered = certificate_pem(self_signed(other_key))
    assertion = sign(signing_key=other_key, named=unregistered, thumbprint="x5t")
    body = post_token(cluster, assertion_form(client_id, assertion)).json()
    expected = hashlib.sha1(der(unregistered)).hexdigest().upper()
    assert f"Thumbprint of key used by client: '{expected}'" in body["error_description"]
    assert f"app Id '{client_id}'" in body["error_description"]


def test_a_certificate_past_its_validity_is_an_expired_key(
    cluster: EmulatorCluster, entra_admin: Admin, client_id: str, key: rsa.RSAPrivateKey,
    sign: Sign,
) -> None:
    short_lived = certificate_pem(self_signed(key, days=1))
    register(entra_admin, client_id, short_lived)
    entra_admin.advance_clock(2 * 24 * 3600)
    response = post_token(cluster, assertion_form(client_id, sign(named=short_lived)))
    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]
    assert "[Reason - The key used is expired." in response.json()["error_description"]


def test_msal_assertions_follow_the_shared_clock(
    cluster: EmulatorCluster, entra_admin: Admin, client_id: str, key: rsa.RSAPrivateKey,
    registered: str,
) -> None:
    # msal's assertions live 10 minutes by the real clock; moved past them, the tenant refuses
    # them as it refuses a client whose clock is wrong.
    entra_admin.advance_clock(3600)
    app = certificate_app(cluster, client_id,
                          {"private_key": key_pem(key), "public_certificate": registered})
    result = app.acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    assert (result["error"], result["error_codes"]) == ("invalid_client", [700024])


def test_an_unregistered_client_with_an_assertion_is_unknown(
    cluster: EmulatorCluster, registered: str, sign: Sign
) -> None:
    other = "99999999-9999-4999-8999-999999999999"
    response = post_token(cluster, assertion_form(other, sign(iss=other, sub=other)))
    assert response.status_code == 400
    assert response.json()["error_codes"] == [700016]


def test_a_secret_and_an_assertion_together_are_one_method_too_many(
    cluster: EmulatorCluster, client_id: str, registered: str, sign: Sign
) -> None:
    secret = described(cluster)["default_client"]["client_secret"]
    in_body = post_token(cluster, assertion_form(client_id, sign(), client_secret=secret))
    basic = post_token(cluster, assertion_form(None, sign()), auth=(client_id, secret))
    for response in (in_body, basic):
        assert response.status_code == 400
        assert (response.json()["error"], response.json()["error_codes"]) == (
            "invalid_request", [9002313])


def test_the_assertion_type_is_required_and_must_be_jwt_bearer(
    cluster: EmulatorCluster, client_id: str, registered: str, sign: Sign
) -> None:
    missing = assertion_form(client_id, sign())
    del missing["client_assertion_type"]
    response = post_token(cluster, missing)
    assert (response.status_code, response.json()["error_codes"]) == (400, [900144])
    assert "'client_assertion_type'" in response.json()["error_description"]
    wrong = assertion_form(client_id, sign(), client_assertion_type="urn:example:saml")
    response = post_token(cluster, wrong)
    assert (response.status_code, response.json()["error_codes"]) == (400, [90011])


# --- seed --------------------------------------------------------------------------------------
def test_state_lists_the_certificates_and_reset_forgets_them(
    cluster: EmulatorCluster, entra_admin: Admin, client_id: str, registered: str
) -> None:
    client = entra_admin.state(client_id=client_id)["clients"][0]
    assert [der(pem) for pem in client["certificates"]] == [der(registered)]
    assert client["client_secret"] == described(cluster)["default_client"]["client_secret"]
    cluster.reset()
    assert entra_admin.state(client_id=client_id)["clients"][0]["certificates"] == []


def test_a_seed_without_certificates_lists_none(entra_admin: Admin) -> None:
    assert all(client["certificates"] == [] for client in entra_admin.state()["clients"])


@pytest.mark.parametrize(
    "certificates",
    ["not a list", ["garbage"], ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"],
     "two-in-one", "duplicate", "ec-key"],
)
def test_bad_certificates_in_a_seed_are_rejected_and_change_nothing(
    cluster: EmulatorCluster, entra_admin: Admin, client_id: str, certificate: str,
    certificates: Any,
) -> None:
    if certificates == "two-in-one":
        certificates = [certificate + certificate]
    elif certificates == "duplicate":
        certificates = [certificate, certificate]
    elif certificates == "ec-key":
        certificates = [certificate_pem(self_signed(ec.generate_private_key(ec.SECP256R1())))]
    before = entra_admin.state()
    client = {**before["clients"][0], "certificates": certificates}
    response = requests.post(
        f"{described(cluster)['base_url']}/_emulator/seed", json={"clients": [client]},
        verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert "certificates" in response.json()["error"]
    assert entra_admin.state() == before
