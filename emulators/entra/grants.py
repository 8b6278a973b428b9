"""The token endpoint's grants: client credentials, on-behalf-of and refresh token.

Checks run in the order Entra applies them: grant type, client, its credential (a secret, or a
client assertion signed by a registered certificate: ``client_assertions``), scope, then the
grant's own inputs. Each failure raises ``EntraError`` with the AADSTS code a real tenant answers
with.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.entra import errors
from emulators.entra.client_assertions import (
    CLIENT_ASSERTION_TYPE,
    AssertionContext,
    assertion_subject,
    token_endpoints,
    verify_client_assertion,
)
from emulators.entra.directory import Directory, RegisteredClient
from emulators.entra.errors import EntraError, InvalidToken
from emulators.entra.tokens import Authority, TokenIssuer, TokenVerifier, audience_matches

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_REFRESH_TOKEN = "refresh_token"
# msal adds these to delegated requests; they ask for an id token, a refresh token, a profile.
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
# What a resource that is not registered in the tenant (a Dataverse environment) exposes.
EXTERNAL_RESOURCE_SCOPES = ("user_impersonation",)


@dataclass(frozen=True)
class RefreshGrant:
    client_id: str
    user_oid: str


@dataclass
class TokenExchange:
    """Everything one token request may read or change; built under the emulator's lock."""

    authority: Authority
    directory: Directory
    issuer: TokenIssuer
    verifier: TokenVerifier
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)

    def exchange(
        self, form: Mapping[str, str], basic_auth: tuple[str, str] | None
    ) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise errors.missing_parameter("grant_type")
        if grant_type not in (GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, GRANT_REFRESH_TOKEN):
            raise errors.unsupported_grant_type(grant_type)
        client = self._authenticate(form, basic_auth)
        if grant_type == GRANT_CLIENT_CREDENTIALS:
            return self._client_credentials(client, form)
        if grant_type == GRANT_JWT_BEARER:
            return self._on_behalf_of(client, form)
        return self._refresh(client, form)

    # --- client authentication -------------------------------------------------------------
    def _authenticate(
        self, form: Mapping[str, str], basic_auth: tuple[str, str] | None
    ) -> RegisteredClient:
        assertion = form.get("client_assertion", "")
        client_id = (
            form.get("client_id") or (basic_auth[0] if basic_auth else "")
            or (assertion_subject(assertion) if assertion else "")
        )
        secret = form.get("client_secret") or (basic_auth[1] if basic_auth else "")
        if not client_id:
            raise errors.missing_parameter("client_id")
        client = self.directory.client(client_id)
        if client is None:
            raise errors.unknown_client(client_id, self.directory.tenant_domain)
        if assertion and secret:
            raise errors.several_client_credentials()
        if assertion:
            self._check_client_assertion(client, form, assertion)
            return client
        if not secret:
            raise errors.missing_client_credential()
        if client.client_secret is None or not secrets.compare_digest(
            secret.encode(), client.client_secret.encode()
        ):
            raise errors.invalid_client_secret(client.client_id)
        return client

    def _check_client_assertion(
        self, client: RegisteredClient, form: Mapping[str, str], assertion: str
    ) -> None:
        assertion_type = form.get("client_assertion_type")
        if not assertion_type:
            raise errors.missing_parameter("client_assertion_type")
        if assertion_type != CLIENT_ASSERTION_TYPE:
            raise errors.unexpected_client_assertion_type()
        tenants = (self.authority.tenant_id, self.directory.tenant_domain)
        context = AssertionContext(
            audiences=token_endpoints(self.authority.base_url, tenants),
            now=self.issuer.clock.time(),
            clock_skew_seconds=self.issuer.policy.clock_skew_seconds,
        )
        verify_client_assertion(assertion, client, context)

    # --- grants ----------------------------------------------------------------------------
    def _client_credentials(
        self, client: RegisteredClient, form: Mapping[str, str]
    ) -> dict[str, Any]:
        scope = form.get("scope", "").strip()
        if not scope:
            raise errors.missing_parameter("scope")
        requested = scope.split()
        if len(requested) != 1 or not requested[0].endswith("/.default"):
            raise errors.client_credentials_need_default(scope)
        resource = requested[0][: -len("/.default")]
        self._exposed_scopes(resource)
        token, lifetime = self.issuer.app_token(self.authority, client, resource)
        return _token_response(token, lifetime)

    def _on_behalf_of(self, client: RegisteredClient, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("requested_token_use") != "on_behalf_of":
            raise errors.missing_parameter("requested_token_use")
        assertion = form.get("assertion")
        if not assertion:
            raise errors.missing_parameter("assertion")
        resource, granted, oidc = self._delegated_scopes(client, form.get("scope", ""))
        claims = self._check_assertion(assertion, client)
        user = self.directory.user(str(claims.get("oid", "")))
        if user is None:
            raise errors.invalid_grant(
                50034, f"The user account {claims.get('upn') or claims.get('oid')} does not exist "
                f"in the {self.directory.tenant_domain} directory. To sign into this application, "
                "the account must be added to the directory.",
            )
        return self._user_response(client, user.oid, resource, granted, oidc, form)

    def _refresh(self, client: RegisteredClient, form: Mapping[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise errors.missing_parameter("refresh_token")
        grant = self.refresh_tokens.get(presented)
        if grant is None:
            raise errors.invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
        if grant.client_id != client.client_id:
            raise errors.invalid_grant(70000, "Provided grant is invalid or malformed.")
        resource, granted, oidc = self._delegated_scopes(client, form.get("scope", ""))
        return self._user_response(client, grant.user_oid, resource, granted, oidc, form)

    # --- pieces ----------------------------------------------------------------------------
    def _check_assertion(self, assertion: str, client: RegisteredClient) -> dict[str, Any]:
        try:
            claims = self.verifier.signed_claims(assertion)
        except InvalidToken as exc:
            raise errors.invalid_grant(
                50013, f"Assertion failed signature validation. [Reason - {exc.reason}.]"
            ) from exc
        try:
            self.verifier.check_issuer_and_time(claims, self.authority)
        except InvalidToken as exc:
            if exc.reason in ("token expired", "token not yet valid"):
                raise errors.invalid_grant(
                    500133, "Assertion is not within its valid time range. Ensure that the access "
                    "token is not expired before using it for user assertion, or request a new "
                    f"token. Current time: {_entra_time(self.issuer.clock.time())}, expiry time "
                    f"of assertion {_entra_time(float(claims.get('exp', 0)))}.",
                ) from exc
            raise errors.invalid_grant(
                50013, f"Assertion is not valid. [Reason - {exc.reason}.]"
            ) from exc
        accepted = [value for value in (client.client_id, client.app_id_uri) if value]
        if not any(audience_matches(claims.get("aud"), value) for value in accepted):
            raise errors.invalid_grant(
                50013, "Assertion audience does not match the Client app presenting the assertion. "
                f"The audience in the assertion was '{claims.get('aud')}' and the expected "
                f"audience is '{client.client_id}' or one of the Application Uris of this "
                f"application with App ID '{client.client_id}'({client.display_name}). The "
                "downstream client must "
                "request a token for the expected audience (the application that made the OBO "
                "request) and this application should use that token as the assertion.",
            )
        if "scp" not in claims:
            # Only a user's delegated token can be exchanged. Entra answers an app-only assertion
            # (client credentials: roles, no scp) with its own code, not as a bad assertion.
            if claims.get("idtyp") != "user":
                raise errors.application_on_behalf_of(client.client_id)
            raise errors.invalid_grant(
                50013, "Assertion is not a user token. The on-behalf-of flow requires a token "
                "issued to a user with delegated permissions.",
            )
        return claims

    def _exposed_scopes(self, resource: str) -> tuple[str, ...]:
        api = self.directory.api(resource)
        if api is not None:
            return api.scopes
        if resource.startswith("https://"):
            return EXTERNAL_RESOURCE_SCOPES
        raise errors.unknown_resource(resource, self.directory.tenant_domain)

    def _delegated_scopes(
        self, client: RegisteredClient, scope: str
    ) -> tuple[str, list[str], set[str]]:
        requested = scope.split()
        if not requested:
            raise errors.missing_parameter("scope")
        oidc = {item for item in requested if item in OIDC_SCOPES}
        resource_scopes = [item for item in requested if item not in OIDC_SCOPES]
        if not resource_scopes:
            raise errors.invalid_scope(scope)
        split = [item.rsplit("/", 1) for item in resource_scopes]
        if any(len(parts) != 2 or not parts[0] or not parts[1] for parts in split):
            raise errors.invalid_scope(scope)
        resources = {parts[0].rstrip("/") for parts in split}
        if len(resources) > 1:
            raise errors.several_resources(scope)
        resource = split[0][0]
        exposed = self._exposed_scopes(resource)
        names = [parts[1] for parts in split]
        if ".default" in names:
            if len(names) > 1:
                raise errors.invalid_scope(scope)
            return resource, list(exposed), oidc
        for name in names:
            if name not in exposed:
                raise errors.unknown_scope_on_resource(client.client_id, name, resource)
        return resource, names, oidc

    def _user_response(
        self, client: RegisteredClient, user_oid: str, resource: str, granted: list[str],
        oidc: set[str], form: Mapping[str, str],
    ) -> dict[str, Any]:
        user = self.directory.user(user_oid)
        if user is None:
            raise errors.invalid_grant(70000, "Provided grant is invalid or malformed.")
        token, lifetime = self.issuer.user_token(
            self.authority, user, client.client_id, resource, granted
        )
        response = _token_response(token, lifetime)
        response["scope"] = " ".join([f"{resource}/{name}" for name in granted] + sorted(oidc))
        if "offline_access" in oidc:
            refresh_token = secrets.token_urlsafe(48)
            self.refresh_tokens[refresh_token] = RefreshGrant(client.client_id, user.oid)
            response["refresh_token"] = refresh_token
        if "openid" in oidc:
            response["id_token"] = self.issuer.id_token(self.authority, user, client.client_id)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user.oid, "utid": self.authority.tenant_id}).encode()
            response["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
        return response


def _token_response(token: str, lifetime: int) -> dict[str, Any]:
    return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
            "access_token": token}


def _entra_time(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.strftime("%m/%d/%Y %H:%M:%S")


__all__ = ["EntraError", "RefreshGrant", "TokenExchange"]
