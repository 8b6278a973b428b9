"""Entra ID emulator: discovery, JWKS, msal flows, token claims, error envelopes, verification."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.cluster import EmulatorCluster
from emulators.entra import InvalidToken
from tests.emulators.conftest import Admin

DATAVERSE = "https://contoso.crm.dynamics.com"
ADA = "ada.lovelace@connectordev.onmicrosoft.com"
OTHER_CLIENT: dict[str, Any] = {
    "client_id": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "client_secret": "other-secret",
    "display_name": "Other app",
    "app_id_uri": "api://other",
    "roles": ["Sync.ReadWrite"],
}


class CaTrustingSession(requests.Session):
    """REQUESTS_CA_BUNDLE overrides ``Session.verify``; a per-request ``verify`` is what wins."""

    def __init__(self, ca_bundle: str) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.ca_bundle)
        return super().request(method, url, *args, **kwargs)


def described(cluster: EmulatorCluster) -> dict[str, Any]:
    return cluster.entra.describe()


def connector_app(
    cluster: EmulatorCluster, secret: str | None = None, client_id: str | None = None
) -> msal.ConfidentialClientApplication:
    info = described(cluster)
    return msal.ConfidentialClientApplication(
        client_id or info["default_client"]["client_id"],
        client_credential=secret or info["default_client"]["client_secret"],
        authority=info["authority"],
        instance_discovery=False,
        http_client=CaTrustingSession(cluster.ca_bundle),
    )


def mint(entra_admin: Admin, **payload: Any) -> str:
    return str(entra_admin.call("POST", "token", payload)["access_token"])


def post_token(cluster: EmulatorCluster, form: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.post(
        described(cluster)["token_endpoint"], data=form, verify=cluster.ca_bundle, timeout=10,
        **kwargs,
    )


def default_client_form(cluster: EmulatorCluster, **extra: str) -> dict[str, str]:
    client = described(cluster)["default_client"]
    return {"client_id": client["client_id"], "client_secret": client["client_secret"], **extra}


def verified_over_https(cluster: EmulatorCluster, token: str, audience: str) -> dict[str, Any]:
    """Verify the way an outside resource would: keys fetched from the published JWKS."""
    info = described(cluster)
    discovery = requests.get(
        f"{info['authority']}/v2.0/.well-known/openid-configuration", verify=cluster.ca_bundle,
        timeout=10,
    ).json()
    jwks = requests.get(discovery["jwks_uri"], verify=cluster.ca_bundle, timeout=10).json()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=audience,
        issuer=discovery["issuer"],
    )
    return claims


# --- discovery and keys ------------------------------------------------------------------------
def test_discovery_document_names_the_tenant_endpoints(cluster: EmulatorCluster) -> None:
    info = described(cluster)
    response = requests.get(
        f"{info['authority']}/v2.0/.well-known/openid-configuration", verify=cluster.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == f"{info['base_url']}/{info['tenant_id']}/v2.0" == info["issuer"]
    assert document["token_endpoint"] == f"{info['authority']}/oauth2/v2.0/token"
    assert document["jwks_uri"] == f"{info['authority']}/discovery/v2.0/keys" == info["jwks_uri"]
    assert document["authorization_endpoint"] == f"{info['authority']}/oauth2/v2.0/authorize"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_discovery_accepts_the_tenant_domain(cluster: EmulatorCluster) -> None:
    info = described(cluster)
    url = f"{info['base_url']}/ConnectorDev.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    response = requests.get(url, verify=cluster.ca_bundle, timeout=10)
    assert response.status_code == 200
    assert response.json()["issuer"] == info["issuer"]


def test_unknown_tenant_is_not_found_with_aadsts90002(cluster: EmulatorCluster) -> None:
    base = described(cluster)["base_url"]
    other = "11111111-2222-4333-8444-555555555555"
    for url in (
        f"{base}/{other}/v2.0/.well-known/openid-configuration",
        f"{base}/{other}/discovery/v2.0/keys",
    ):
        response = requests.get(url, verify=cluster.ca_bundle, timeout=10)
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "invalid_tenant"
        assert body["error_codes"] == [90002]
        assert body["error_description"].startswith(f"AADSTS90002: Tenant '{other}' not found.")


def test_jwks_publishes_the_rsa_signing_key(cluster: EmulatorCluster) -> None:
    response = requests.get(described(cluster)["jwks_uri"], verify=cluster.ca_bundle, timeout=10)
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["e"] == "AQAB"
    assert key["kid"] == key["x5t"]
    assert key["x5c"] and key["n"]


def test_wrong_methods_and_unknown_paths_answer_in_entra_shape(cluster: EmulatorCluster) -> None:
    info = described(cluster)
    get_token = requests.get(info["token_endpoint"], verify=cluster.ca_bundle, timeout=10)
    assert get_token.status_code == 400
    assert get_token.json()["error_codes"] == [900561]
    post_keys = requests.post(info["jwks_uri"], verify=cluster.ca_bundle, timeout=10)
    assert post_keys.status_code == 405
    assert post_keys.json()["error"] == "invalid_request"
    missing = requests.get(f"{info['base_url']}/nowhere", verify=cluster.ca_bundle, timeout=10)
    assert missing.status_code == 404
    assert set(missing.json()) >= {"error", "error_description", "error_codes", "trace_id"}


# --- msal flows --------------------------------------------------------------------------------
def test_msal_client_credentials_gets_an_app_token(cluster: EmulatorCluster) -> None:
    app = connector_app(cluster)
    result = app.acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3600
    claims = verified_over_https(cluster, result["access_token"], DATAVERSE)
    info = described(cluster)
    client_id = info["default_client"]["client_id"]
    assert claims["aud"] == DATAVERSE
    assert claims["tid"] == info["tenant_id"]
    assert claims["appid"] == claims["azp"] == client_id
    assert claims["idtyp"] == "app" and "scp" not in claims
    assert claims["oid"] == claims["sub"]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert jwt.get_unverified_header(result["access_token"])["alg"] == "RS256"
    again = app.acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    assert again["token_source"] == "cache"


def test_app_token_carries_the_client_roles(cluster: EmulatorCluster, entra_admin: Admin) -> None:
    entra_admin.seed({"clients": [OTHER_CLIENT]})
    app = connector_app(cluster, OTHER_CLIENT["client_secret"], OTHER_CLIENT["client_id"])
    result = app.acquire_token_for_client(scopes=["api://connector/.default"])
    claims = verified_over_https(cluster, result["access_token"], "api://connector")
    assert claims["roles"] == ["Sync.ReadWrite"]


def test_msal_on_behalf_of_exchanges_a_user_token(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    user_token = mint(entra_admin, user=ADA)
    app = connector_app(cluster)
    result = app.acquire_token_on_behalf_of(
        user_assertion=user_token, scopes=[f"{DATAVERSE}/user_impersonation"]
    )
    assert "access_token" in result, result
    claims = verified_over_https(cluster, result["access_token"], DATAVERSE)
    user = next(u for u in described(cluster)["users"] if u["upn"] == ADA)
    assert claims["oid"] == user["oid"]
    assert claims["upn"] == claims["preferred_username"] == ADA
    assert claims["scp"] == "user_impersonation"
    assert claims["idtyp"] == "user" and claims["name"] == "Ada Lovelace"
    assert claims["azp"] == described(cluster)["default_client"]["client_id"]
    assert result["id_token_claims"]["oid"] == user["oid"]
    assert "refresh_token" in result


def test_on_behalf_of_with_default_scope_grants_the_exposed_scope(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    result = connector_app(cluster).acquire_token_on_behalf_of(
        user_assertion=mint(entra_admin, user=ADA), scopes=[f"{DATAVERSE}/.default"]
    )
    assert jwt.decode(result["access_token"], options={"verify_signature": False})["scp"] == (
        "user_impersonation"
    )


def test_msal_on_behalf_of_with_an_app_token_is_refused_as_entra_does(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    # Entra refuses an app-only assertion with its own code, not as a bad user token (50013).
    client_id = described(cluster)["default_client"]["client_id"]
    result = connector_app(cluster).acquire_token_on_behalf_of(
        user_assertion=mint(entra_admin, client_id=client_id),
        scopes=[f"{DATAVERSE}/user_impersonation"],
    )
    assert (result["error"], result["error_codes"]) == ("unauthorized_client", [7000114])
    assert result["error_description"].startswith(
        f"AADSTS7000114: Application '{client_id}' is not allowed to make application "
        "on-behalf-of calls."
    )


def test_refresh_token_grant_issues_a_new_user_token(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    first = post_token(cluster, default_client_form(
        cluster, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        requested_token_use="on_behalf_of", assertion=mint(entra_admin, user=ADA),
        scope=f"{DATAVERSE}/user_impersonation offline_access",
    )).json()
    refreshed = post_token(cluster, default_client_form(
        cluster, grant_type="refresh_token", refresh_token=first["refresh_token"],
        scope=f"{DATAVERSE}/.default",
    ))
    assert refreshed.status_code == 200
    claims = cluster.entra.verify_access_token(refreshed.json()["access_token"], DATAVERSE)
    assert claims["upn"] == ADA
    unknown = post_token(cluster, default_client_form(
        cluster, grant_type="refresh_token", refresh_token="nope", scope=f"{DATAVERSE}/.default",
    ))
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"


def test_client_secret_basic_authenticates(cluster: EmulatorCluster) -> None:
    client = described(cluster)["default_client"]
    response = post_token(
        cluster, {"grant_type": "client_credentials", "scope": f"{DATAVERSE}/.default"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"].startswith("no-store")


# --- token endpoint errors ---------------------------------------------------------------------
UNKNOWN_CLIENT = "99999999-9999-4999-8999-999999999999"
CC = "client_credentials"


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_secret": "wrong", "grant_type": CC, "scope": f"{DATAVERSE}/.default"},
         401, "invalid_client", 7000215),
        ({"client_id": UNKNOWN_CLIENT, "grant_type": CC, "scope": f"{DATAVERSE}/.default"},
         400, "unauthorized_client", 700016),
        ({"client_secret": "", "grant_type": CC, "scope": f"{DATAVERSE}/.default"},
         401, "invalid_client", 7000218),
        ({"grant_type": CC, "scope": f"{DATAVERSE}/user_impersonation"},
         400, "invalid_scope", 1002012),
        ({"grant_type": CC}, 400, "invalid_request", 900144),
        ({"grant_type": CC, "scope": "api://nothing-here/.default"},
         400, "invalid_resource", 500011),
        ({"grant_type": "password", "scope": f"{DATAVERSE}/.default"},
         400, "unsupported_grant_type", 70003),
        ({"scope": f"{DATAVERSE}/.default"}, 400, "invalid_request", 900144),
    ],
    ids=["bad-secret", "unknown-client", "no-secret", "not-default-scope", "no-scope",
         "unknown-resource", "unsupported-grant", "no-grant-type"],
)
def test_token_errors_use_the_entra_envelope(
    cluster: EmulatorCluster, form: dict[str, str], status: int, error: str, code: int
) -> None:
    response = post_token(
        cluster, {**default_client_form(cluster), **form}, headers={"client-request-id": "corr-1"}
    )
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert body["correlation_id"] == "corr-1"
    assert body["error_uri"].endswith(f"?code={code}")
    assert body["timestamp"].endswith("Z")


def test_msal_reports_a_bad_secret_as_a_result_not_an_exception(cluster: EmulatorCluster) -> None:
    result = connector_app(cluster, secret="wrong").acquire_token_for_client(
        scopes=[f"{DATAVERSE}/.default"]
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_token_endpoint_of_an_unknown_tenant_fails(cluster: EmulatorCluster) -> None:
    base = described(cluster)["base_url"]
    response = requests.post(
        f"{base}/contoso.onmicrosoft.com/oauth2/v2.0/token",
        data=default_client_form(cluster, grant_type=CC, scope=f"{DATAVERSE}/.default"),
        verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def obo_form(cluster: EmulatorCluster, assertion: str, scope: str) -> dict[str, str]:
    return default_client_form(
        cluster, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
        requested_token_use="on_behalf_of", assertion=assertion, scope=scope,
    )


@pytest.mark.parametrize(
    ("mint_payload", "scope", "error", "code", "text"),
    [
        ({"user": ADA, "audience": DATAVERSE}, f"{DATAVERSE}/user_impersonation",
         "invalid_grant", 50013, "Assertion audience does not match"),
        ({"client_id": "5b1e3d2a-8c4f-4a6e-b9d7-1f2e3c4d5a6b"}, f"{DATAVERSE}/.default",
         "unauthorized_client", 7000114, "not allowed to make application on-behalf-of calls"),
        ({"user": ADA, "claims": {"scp": None}}, f"{DATAVERSE}/.default",
         "invalid_grant", 50013, "not a user token"),
        ({"user": ADA, "claims": {"tid": "11111111-2222-4333-8444-555555555555"}},
         f"{DATAVERSE}/.default", "invalid_grant", 50013, "wrong tenant"),
        ({"user": ADA}, f"{DATAVERSE}/Contacts.Read", "invalid_scope", 650053,
         "asked for scope 'Contacts.Read' that doesn't exist"),
        ({"user": ADA}, f"{DATAVERSE}/.default api://other/.default", "invalid_scope", 28000,
         "more than one resource"),
        ({"user": ADA}, "user_impersonation", "invalid_scope", 70011, "scope"),
    ],
    ids=["assertion-for-dataverse", "app-token", "user-token-without-scp", "other-tenant",
         "unknown-scope", "two-resources", "bare-scope"],
)
def test_on_behalf_of_rejects_bad_assertions_and_scopes(
    cluster: EmulatorCluster, entra_admin: Admin, mint_payload: dict[str, Any], scope: str,
    error: str, code: int, text: str,
) -> None:
    response = post_token(cluster, obo_form(cluster, mint(entra_admin, **mint_payload), scope))
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert text in body["error_description"]


def test_on_behalf_of_rejects_a_tampered_assertion(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    response = post_token(
        cluster, obo_form(cluster, tampered(mint(entra_admin, user=ADA)), f"{DATAVERSE}/.default")
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [50013]
    assert "signature" in response.json()["error_description"]


def test_on_behalf_of_rejects_an_expired_assertion(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    assertion = mint(entra_admin, user=ADA, lifetime_seconds=600)
    entra_admin.advance_clock(601)
    response = post_token(cluster, obo_form(cluster, assertion, f"{DATAVERSE}/.default"))
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("invalid_grant", [500133])
    assert "not within its valid time range" in body["error_description"]


def test_on_behalf_of_needs_the_assertion(cluster: EmulatorCluster) -> None:
    form = obo_form(cluster, "", f"{DATAVERSE}/.default")
    response = post_token(cluster, form)
    assert response.json()["error_codes"] == [900144]
    assert "'assertion'" in response.json()["error_description"]


# --- in-process verification -------------------------------------------------------------------
def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["oid"] = "00000000-0000-4000-8000-000000000000"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_verify_accepts_audience_with_or_without_trailing_slash(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    token = mint(entra_admin, user=ADA, audience=f"{DATAVERSE}/")
    assert cluster.entra.verify_access_token(token, DATAVERSE)["upn"] == ADA
    assert cluster.entra.verify_access_token(token, f"{DATAVERSE}/")["upn"] == ADA


def test_verify_rejects_alg_none(cluster: EmulatorCluster, entra_admin: Admin) -> None:
    good = mint(entra_admin, user=ADA, audience=DATAVERSE)
    claims = jwt.decode(good, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none",  # type: ignore[arg-type]
                          headers={"kid": jwt.get_unverified_header(good)["kid"]})
    with pytest.raises(InvalidToken, match="algorithm"):
        cluster.entra.verify_access_token(unsigned, DATAVERSE)


def test_verify_rejects_a_key_the_tenant_does_not_publish(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    claims = jwt.decode(mint(entra_admin, user=ADA, audience=DATAVERSE),
                        options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "not-ours"})
    with pytest.raises(InvalidToken, match="unknown signing key"):
        cluster.entra.verify_access_token(forged, DATAVERSE)
    kid = jwt.get_unverified_header(mint(entra_admin, user=ADA))["kid"]
    same_kid = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid})
    with pytest.raises(InvalidToken, match="signature"):
        cluster.entra.verify_access_token(same_kid, DATAVERSE)


@pytest.mark.parametrize(
    ("mint_payload", "audience", "reason"),
    [
        ({"audience": DATAVERSE}, "https://other.crm.dynamics.com", "wrong audience"),
        ({"audience": DATAVERSE, "claims": {"tid": "11111111-2222-4333-8444-555555555555"}},
         DATAVERSE, "wrong tenant"),
        ({"audience": DATAVERSE, "claims": {"iss": "https://sts.windows.net/x/"}},
         DATAVERSE, "wrong issuer"),
        ({"audience": DATAVERSE, "claims": {"nbf": 4_000_000_000}}, DATAVERSE, "not yet valid"),
        ({"audience": DATAVERSE, "claims": {"exp": None}}, DATAVERSE, "no exp"),
    ],
    ids=["audience", "tenant", "issuer", "not-before", "no-expiry"],
)
def test_verify_rejects_claims_that_do_not_fit(
    cluster: EmulatorCluster, entra_admin: Admin, mint_payload: dict[str, Any], audience: str,
    reason: str,
) -> None:
    token = mint(entra_admin, user=ADA, **mint_payload)
    with pytest.raises(InvalidToken, match=reason):
        cluster.entra.verify_access_token(token, audience)


def test_verify_rejects_tampered_and_malformed_tokens(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    token = mint(entra_admin, user=ADA, audience=DATAVERSE)
    with pytest.raises(InvalidToken, match="signature"):
        cluster.entra.verify_access_token(tampered(token), DATAVERSE)
    for junk in ("", "abc", "a.b.c", token + "x"):
        with pytest.raises(InvalidToken):
            cluster.entra.verify_access_token(junk, DATAVERSE)


def test_verify_follows_the_shared_clock_to_expiry(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    token = mint(entra_admin, user=ADA, audience=DATAVERSE)
    assert cluster.entra.verify_access_token(token, DATAVERSE)
    entra_admin.advance_clock(3599)
    assert cluster.entra.verify_access_token(token, DATAVERSE)
    entra_admin.advance_clock(1)
    with pytest.raises(InvalidToken, match="expired"):
        cluster.entra.verify_access_token(token, DATAVERSE)
    entra_admin.configure(clock_skew_seconds=300)
    assert cluster.entra.verify_access_token(token, DATAVERSE)


def test_rotation_keeps_or_retires_the_previous_key(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    old = mint(entra_admin, user=ADA, audience=DATAVERSE)
    rotated = entra_admin.call("POST", "rotate-keys", {"keep_previous": True})
    assert len(rotated["kids"]) == 2
    new = mint(entra_admin, user=ADA, audience=DATAVERSE)
    assert jwt.get_unverified_header(new)["kid"] == rotated["signing_kid"]
    assert cluster.entra.verify_access_token(old, DATAVERSE)
    keys = requests.get(described(cluster)["jwks_uri"], verify=cluster.ca_bundle, timeout=10)
    assert [key["kid"] for key in keys.json()["keys"]][0] == rotated["signing_kid"]
    entra_admin.call("POST", "rotate-keys", {"keep_previous": False})
    with pytest.raises(InvalidToken, match="unknown signing key"):
        cluster.entra.verify_access_token(old, DATAVERSE)
    cluster.reset()
    assert cluster.entra.verify_access_token(old, DATAVERSE)


# --- admin: mint, seed, reset, config ----------------------------------------------------------
def test_minted_user_token_has_delegated_claims(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    minted = entra_admin.call("POST", "token", {"user": ADA, "scopes": ["a", "b"],
                                                "lifetime_seconds": 120})
    assert minted["token_type"] == "Bearer" and minted["expires_in"] == 120
    claims = verified_over_https(cluster, minted["access_token"], "api://connector")
    assert claims["scp"] == "a b" and claims["upn"] == ADA
    assert claims["exp"] - claims["iat"] == 120
    by_oid = next(u for u in described(cluster)["users"] if u["upn"] == ADA)["oid"]
    assert cluster.entra.verify_access_token(
        mint(entra_admin, user=by_oid), "api://connector"
    )["upn"] == ADA


def test_minted_app_token_has_roles(cluster: EmulatorCluster, entra_admin: Admin) -> None:
    client_id = described(cluster)["default_client"]["client_id"]
    token = mint(entra_admin, client_id=client_id, audience=DATAVERSE, roles=["Admin"])
    claims = cluster.entra.verify_access_token(token, DATAVERSE)
    assert claims["roles"] == ["Admin"] and claims["idtyp"] == "app" and "scp" not in claims


@pytest.mark.parametrize(
    "payload",
    [{"user": "nobody@nowhere.test"}, {"client_id": UNKNOWN_CLIENT}, {}, {"user": ADA, "x": 1},
     {"user": ADA, "lifetime_seconds": 0}, {"user": ADA, "scopes": "a"}],
    ids=["unknown-user", "unknown-client", "no-subject", "unknown-key", "bad-lifetime",
         "bad-scopes"],
)
def test_mint_rejects_bad_requests(
    cluster: EmulatorCluster, payload: dict[str, Any]
) -> None:
    response = requests.post(
        f"{described(cluster)['base_url']}/_emulator/token", json=payload,
        verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert "error" in response.json()


def test_seeded_client_and_user_work_until_reset(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    user = {"oid": "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b", "display_name": "Lin",
            "upn": "lin@connectordev.onmicrosoft.com"}
    assert entra_admin.seed({"clients": [OTHER_CLIENT], "users": [user]}) == {
        "seeded": {"clients": 1, "users": 1}
    }
    state = entra_admin.state(client_id=OTHER_CLIENT["client_id"])
    assert [client["app_id_uri"] for client in state["clients"]] == ["api://other"]
    found = entra_admin.state(user="LIN@connectordev.onmicrosoft.com")["users"]
    assert [u["oid"] for u in found] == [user["oid"]]
    app = connector_app(cluster, OTHER_CLIENT["client_secret"], OTHER_CLIENT["client_id"])
    assert "access_token" in app.acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    cluster.reset()
    after = entra_admin.state()
    assert OTHER_CLIENT["client_id"] not in [client["client_id"] for client in after["clients"]]
    assert [u["upn"] for u in after["users"]] == [ADA, "grace.hopper@connectordev.onmicrosoft.com"]


def test_seeding_a_tenant_moves_the_issuer(cluster: EmulatorCluster, entra_admin: Admin) -> None:
    tenant = "aaaabbbb-cccc-4ddd-8eee-ffff00001111"
    entra_admin.seed({"tenant_id": tenant, "tenant_domain": "fabrikam.onmicrosoft.com"})
    info = described(cluster)
    assert info["issuer"].endswith(f"/{tenant}/v2.0")
    result = connector_app(cluster).acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    assert verified_over_https(cluster, result["access_token"], DATAVERSE)["tid"] == tenant


@pytest.mark.parametrize(
    "seed",
    [
        {"clients": [{"client_id": "not-a-guid"}]},
        {"clients": [OTHER_CLIENT, OTHER_CLIENT]},
        {"users": [{"oid": "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b", "upn": "no-at-sign"}]},
        {"tenant_id": "x"},
        {"clients": [{**OTHER_CLIENT, "colour": "blue"}]},
        {"groups": []},
        [],
    ],
    ids=["bad-guid", "duplicate", "bad-upn", "bad-tenant", "unknown-client-key", "unknown-key",
         "not-object"],
)
def test_bad_seed_is_rejected_and_changes_nothing(
    cluster: EmulatorCluster, entra_admin: Admin, seed: Any
) -> None:
    before = entra_admin.state()
    response = requests.post(
        f"{described(cluster)['base_url']}/_emulator/seed", json=seed,
        verify=cluster.ca_bundle, timeout=10,
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert entra_admin.state() == before


def test_token_lifetime_is_configurable_and_validated(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    assert entra_admin.configure(token_lifetime_seconds=600) == {
        "token_lifetime_seconds": 600, "clock_skew_seconds": 0,
    }
    result = connector_app(cluster).acquire_token_for_client(scopes=[f"{DATAVERSE}/.default"])
    assert result["expires_in"] == 600
    for bad in ({"token_lifetime_seconds": 0}, {"clock_skew_seconds": -1}, {"colour": 1}):
        response = requests.post(
            f"{described(cluster)['base_url']}/_emulator/config", json=bad,
            verify=cluster.ca_bundle, timeout=10,
        )
        assert response.status_code == 400
    assert entra_admin.call("GET", "config")["token_lifetime_seconds"] == 600


def test_injected_fault_looks_like_an_entra_outage(
    cluster: EmulatorCluster, entra_admin: Admin
) -> None:
    entra_admin.faults([{"path": "*/token", "status": 503, "retry_after": 2, "count": 1}])
    response = post_token(cluster, default_client_form(cluster, grant_type=CC,
                                                       scope=f"{DATAVERSE}/.default"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"] == "temporarily_unavailable"
