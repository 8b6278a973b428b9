"""UserTokenValidator and on-behalf-of (EntraTokenProvider.user_token) against the Entra emulator.

Tokens are minted by the emulator's admin API (what a CRM page would obtain) or forged here with
keys the tenant never published.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.cluster import EmulatorCluster
from shared.adapters.identity.entra import EntraTokenProvider
from shared.adapters.identity.user_tokens import CrmUser, UserTokenValidator
from shared.config import DataverseSettings, EntraSettings, HttpSettings
from shared.errors import TransientError, Unauthorized, is_permanent
from tests.adapters.conftest import admin

API = "api://connector"
ADA = "ada.lovelace@connectordev.onmicrosoft.com"
GRACE = "grace.hopper@connectordev.onmicrosoft.com"
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"


class FakeMonotonic:
    """The validator's clock for its refresh rate limit, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(entra_settings: EntraSettings) -> EntraSettings:
    return dataclasses.replace(entra_settings, api_audience=API)


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def validator(
    settings: EntraSettings, http: HttpSettings, clock: FakeMonotonic
) -> UserTokenValidator:
    return UserTokenValidator(settings, http=http, monotonic=clock)


def mint(cluster: EmulatorCluster, **payload: Any) -> str:
    return str(admin(cluster, "entra", "POST", "token", payload)["access_token"])


def bearer(token: str) -> str:
    return f"Bearer {token}"


def key_fetches(cluster: EmulatorCluster) -> int:
    return int(admin(cluster, "entra", "GET", "stats")["by_route"].get("keys", 0))


def rotate(cluster: EmulatorCluster, *, keep_previous: bool) -> str:
    rotated = admin(cluster, "entra", "POST", "rotate-keys", {"keep_previous": keep_previous})
    return str(rotated["signing_kid"])


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(claims: dict[str, Any], kid: str) -> str:
    """A well-formed RS256 token signed by a key the tenant never published."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


def published_public_pem(cluster: EmulatorCluster, settings: EntraSettings, kid: str) -> bytes:
    jwks = requests.get(
        f"{settings.authority}/discovery/v2.0/keys", verify=cluster.ca_bundle, timeout=10
    ).json()
    entry = next(key for key in jwks["keys"] if key["kid"] == kid)
    public = jwt.PyJWK(entry).key
    return bytes(public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))


# --- valid tokens ------------------------------------------------------------------------------
def test_a_users_token_for_the_api_gives_the_crm_user(
    cluster: EmulatorCluster, validator: UserTokenValidator, settings: EntraSettings
) -> None:
    token = mint(cluster, user=ADA)
    user = validator.validate(bearer(token))
    assert isinstance(user, CrmUser)
    assert user.object_id == claims_of(token)["oid"]
    assert user.tenant_id == settings.tenant_id
    assert (user.upn, user.name) == (ADA, "Ada Lovelace")
    assert user.assertion == token
    assert token not in repr(user)


def test_audience_may_be_the_client_id_and_the_issuer_v1(
    cluster: EmulatorCluster, validator: UserTokenValidator, settings: EntraSettings
) -> None:
    # v2.0 tokens name the API by client id; an app registration asking for v1 tokens gets the
    # App ID URI and the sts.windows.net issuer.
    assert validator.validate(bearer(mint(cluster, user=ADA, audience=settings.client_id)))
    v1 = mint(cluster, user=ADA, claims={"iss": f"https://sts.windows.net/{settings.tenant_id}/"})
    assert validator.validate(bearer(v1)).upn == ADA


def test_clock_drift_within_a_minute_is_tolerated(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    now = int(time.time())
    token = mint(cluster, user=ADA, claims={"exp": now - 20, "nbf": now + 20})
    assert validator.validate(bearer(token)).upn == ADA


# --- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a.b", "Bearer a b.c.d",
     "Bearer not.a.jwt", "bearer ....", "Token x.y.z"],
)
def test_missing_or_malformed_headers_are_unauthorized(
    validator: UserTokenValidator, header: str | None
) -> None:
    with pytest.raises(Unauthorized):
        validator.validate(header)


def _refusal_cases(settings: EntraSettings) -> dict[str, dict[str, Any]]:
    now = int(time.time())
    return {
        "expired": {"user": ADA, "claims": {"iat": now - 7200, "nbf": now - 7200,
                                            "exp": now - 120}},
        "not-yet-valid": {"user": ADA, "claims": {"nbf": now + 600, "exp": now + 4200}},
        "wrong-audience": {"user": ADA, "audience": "https://contoso.crm.dynamics.com"},
        "wrong-issuer": {"user": ADA, "claims": {"iss": "https://evil.example/tenant/v2.0"}},
        "other-tenant": {"user": ADA, "claims": {"tid": OTHER_TENANT}},
        "app-only": {"client_id": settings.client_id},
        "app-only-roles": {"client_id": settings.client_id, "roles": ["Sync.ReadWrite"]},
        "app-only-idtyp": {"user": ADA, "claims": {"idtyp": "app"}},
        "missing-scope": {"user": ADA, "scopes": ["Contacts.Read"]},
        "no-scp": {"user": ADA, "claims": {"scp": None}},
        "no-exp": {"user": ADA, "claims": {"exp": None}},
        "no-oid": {"user": ADA, "claims": {"oid": None}},
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [("expired", "expired"), ("not-yet-valid", "not yet valid"), ("wrong-audience", "audience"),
     ("wrong-issuer", "issuer"), ("other-tenant", "tenant"), ("app-only", "app-only"),
     ("app-only-roles", "app-only"), ("app-only-idtyp", "app-only"),
     ("missing-scope", "user_impersonation"), ("no-scp", "user_impersonation"),
     ("no-exp", "exp"), ("no-oid", "oid")],
)
def test_tokens_that_do_not_fit_are_unauthorized(
    cluster: EmulatorCluster, validator: UserTokenValidator, settings: EntraSettings,
    case: str, reason: str,
) -> None:
    token = mint(cluster, **_refusal_cases(settings)[case])
    with pytest.raises(Unauthorized) as caught:
        validator.validate(bearer(token))
    assert reason in caught.value.reason
    assert token not in str(caught.value)
    assert is_permanent(caught.value)


def test_the_scope_is_a_setting(
    cluster: EmulatorCluster, settings: EntraSettings, http: HttpSettings
) -> None:
    token = mint(cluster, user=ADA, scopes=["Consent.Write"])
    custom = dataclasses.replace(settings, api_scope="Consent.Write")
    assert UserTokenValidator(custom, http=http).validate(bearer(token)).upn == ADA
    with pytest.raises(Unauthorized):
        UserTokenValidator(settings, http=http).validate(bearer(token))


def test_a_bad_signature_is_unauthorized(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    token = mint(cluster, user=ADA)
    header = jwt.get_unverified_header(token)
    # Claims copied from a real token, signed by another key under the tenant's kid.
    with pytest.raises(Unauthorized, match="bad signature"):
        validator.validate(bearer(forged(claims_of(token), header["kid"])))
    # A real signature over changed claims.
    head, payload, signature = token.split(".")
    changed = b64url(json.dumps({**claims_of(token), "oid": "someone-else"}).encode())
    with pytest.raises(Unauthorized, match="bad signature"):
        validator.validate(bearer(f"{head}.{changed}.{signature}"))


def test_alg_none_is_unauthorized(cluster: EmulatorCluster, validator: UserTokenValidator) -> None:
    token = mint(cluster, user=ADA)
    kid = jwt.get_unverified_header(token)["kid"]
    unsigned = jwt.encode(claims_of(token), None, algorithm="none", headers={"kid": kid})
    with pytest.raises(Unauthorized, match="algorithm"):
        validator.validate(bearer(unsigned))
    with pytest.raises(Unauthorized):  # "none" with the real signature kept
        head = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
        validator.validate(bearer(f"{head}.{token.split('.')[1]}.{token.split('.')[2]}"))


def test_hs256_signed_with_the_public_key_is_unauthorized(
    cluster: EmulatorCluster, validator: UserTokenValidator, settings: EntraSettings
) -> None:
    # The classic confusion attack: the published RSA key used as an HMAC secret.
    token = mint(cluster, user=ADA)
    kid = jwt.get_unverified_header(token)["kid"]
    secret = published_public_pem(cluster, settings, kid)
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = token.split(".")[1]
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(Unauthorized, match="algorithm"):
        validator.validate(bearer(f"{head}.{body}.{b64url(mac)}"))


def test_a_token_without_kid_is_unauthorized(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    claims = claims_of(mint(cluster, user=ADA))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized, match="signing key"):
        validator.validate(bearer(jwt.encode(claims, key, algorithm="RS256")))


# --- signing keys ------------------------------------------------------------------------------
@pytest.mark.exact_requests
def test_keys_are_fetched_once_and_cached(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    for user in (ADA, GRACE, ADA):
        validator.validate(bearer(mint(cluster, user=user)))
    assert key_fetches(cluster) == 1


@pytest.mark.exact_requests
def test_a_rotated_key_is_picked_up_by_one_refresh(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    validator.validate(bearer(mint(cluster, user=ADA)))
    new_kid = rotate(cluster, keep_previous=True)
    token = mint(cluster, user=GRACE)
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    assert validator.validate(bearer(token)).upn == GRACE
    assert validator.validate(bearer(mint(cluster, user=ADA))).upn == ADA
    assert key_fetches(cluster) == 2


@pytest.mark.exact_requests
def test_an_unknown_kid_refreshes_once_then_is_refused(
    cluster: EmulatorCluster, validator: UserTokenValidator, clock: FakeMonotonic
) -> None:
    old = mint(cluster, user=ADA)
    validator.validate(bearer(old))
    rotate(cluster, keep_previous=False)
    # The new key is unknown: one refresh, which also drops the retired key.
    assert validator.validate(bearer(mint(cluster, user=GRACE))).upn == GRACE
    assert key_fetches(cluster) == 2
    with pytest.raises(Unauthorized, match="unknown signing key"):
        validator.validate(bearer(old))
    # A flood of made-up kids costs Entra nothing until the refresh interval has passed.
    claims = claims_of(old)
    for n in range(5):
        with pytest.raises(Unauthorized, match="unknown signing key"):
            validator.validate(bearer(forged(claims, f"made-up-{n}")))
    assert key_fetches(cluster) == 2
    clock.now += 301
    with pytest.raises(Unauthorized, match="unknown signing key"):
        validator.validate(bearer(forged(claims, "made-up-again")))
    assert key_fetches(cluster) == 3


@pytest.mark.exact_requests
def test_alg_none_and_garbage_never_fetch_keys(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    claims = claims_of(mint(cluster, user=ADA))
    for token in (jwt.encode(claims, None, algorithm="none", headers={"kid": "x"}), "a.b.c"):
        with pytest.raises(Unauthorized):
            validator.validate(bearer(token))
    assert key_fetches(cluster) == 0


def test_an_entra_outage_while_loading_keys_is_transient(
    cluster: EmulatorCluster, validator: UserTokenValidator
) -> None:
    token = mint(cluster, user=ADA)
    admin(cluster, "entra", "POST", "faults", {"rules": [{"path": "*keys*", "status": 503}]})
    with pytest.raises(TransientError):
        validator.validate(bearer(token))


# --- on-behalf-of ------------------------------------------------------------------------------
@pytest.fixture
def provider(settings: EntraSettings, http: HttpSettings) -> EntraTokenProvider:
    return EntraTokenProvider(settings, http)


def user_scope(dataverse_settings: DataverseSettings) -> str:
    return f"{dataverse_settings.url}/user_impersonation"


def token_requests(cluster: EmulatorCluster) -> int:
    return int(admin(cluster, "entra", "GET", "stats")["by_route"].get("token", 0))


@pytest.mark.exact_requests
def test_on_behalf_of_gives_a_dataverse_token_for_the_user_and_caches_it_per_assertion(
    cluster: EmulatorCluster, validator: UserTokenValidator, provider: EntraTokenProvider,
    dataverse_settings: DataverseSettings,
) -> None:
    ada = validator.validate(bearer(mint(cluster, user=ADA)))
    grace = validator.validate(bearer(mint(cluster, user=GRACE)))
    token = provider.user_token(ada.assertion, user_scope(dataverse_settings))
    claims = claims_of(token)
    assert claims["oid"] == ada.object_id
    assert claims["aud"].rstrip("/") == dataverse_settings.url
    assert "user_impersonation" in claims["scp"].split()
    assert provider.user_token(ada.assertion, user_scope(dataverse_settings)) == token
    requests_so_far = token_requests(cluster)
    other = provider.user_token(grace.assertion, user_scope(dataverse_settings))
    assert claims_of(other)["oid"] == grace.object_id
    assert token_requests(cluster) == requests_so_far + 1


def test_a_forged_assertion_copying_a_users_oid_gets_nothing_from_the_cache(
    cluster: EmulatorCluster, validator: UserTokenValidator, provider: EntraTokenProvider,
    dataverse_settings: DataverseSettings,
) -> None:
    ada = validator.validate(bearer(mint(cluster, user=ADA)))
    provider.user_token(ada.assertion, user_scope(dataverse_settings))
    copy = forged(claims_of(ada.assertion), jwt.get_unverified_header(ada.assertion)["kid"])
    with pytest.raises(Unauthorized) as caught:
        provider.user_token(copy, user_scope(dataverse_settings))
    assert caught.value.code == "AADSTS50013"


def test_on_behalf_of_with_an_app_only_assertion_is_unauthorized_7000114(
    cluster: EmulatorCluster, provider: EntraTokenProvider, settings: EntraSettings,
    dataverse_settings: DataverseSettings,
) -> None:
    assertion = mint(cluster, client_id=settings.client_id)
    with pytest.raises(Unauthorized) as caught:
        provider.user_token(assertion, user_scope(dataverse_settings))
    assert caught.value.code == "AADSTS7000114"
    assert "on-behalf-of" in caught.value.reason
    assert assertion not in str(caught.value)
    assert is_permanent(caught.value)


def test_on_behalf_of_with_an_expired_assertion_is_unauthorized(
    cluster: EmulatorCluster, provider: EntraTokenProvider, dataverse_settings: DataverseSettings,
) -> None:
    assertion = mint(cluster, user=ADA, lifetime_seconds=600)
    admin(cluster, "entra", "POST", "clock", {"advance_seconds": 601})
    with pytest.raises(Unauthorized) as caught:
        provider.user_token(assertion, user_scope(dataverse_settings))
    assert caught.value.code == "AADSTS500133"


@pytest.mark.parametrize("status", [429, 503])
def test_an_outage_during_on_behalf_of_is_transient(
    cluster: EmulatorCluster, provider: EntraTokenProvider, dataverse_settings: DataverseSettings,
    status: int,
) -> None:
    assertion = mint(cluster, user=ADA)
    admin(cluster, "entra", "POST", "faults", {"rules": [{"path": "*token*", "status": status}]})
    with pytest.raises(TransientError):
        provider.user_token(assertion, user_scope(dataverse_settings))
