"""EntraTokenProvider (MSAL) against the Entra ID emulator."""

from __future__ import annotations

import dataclasses

import jwt
import pytest

from shared.adapters.identity.entra import EntraTokenProvider
from shared.config import DataverseSettings, EntraSettings, HttpSettings
from shared.errors import AuthFailed


def test_app_token_is_issued_for_the_dataverse_environment_and_cached(
    entra_settings: EntraSettings, http: HttpSettings, dataverse_settings: DataverseSettings
) -> None:
    provider = EntraTokenProvider(entra_settings, http)
    token = provider.app_token(dataverse_settings.scope)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"].rstrip("/") == dataverse_settings.url
    assert claims["tid"] == entra_settings.tenant_id
    assert provider.app_token(dataverse_settings.scope) == token  # from MSAL's cache


def test_a_wrong_secret_is_a_typed_auth_failure(
    entra_settings: EntraSettings, http: HttpSettings, dataverse_settings: DataverseSettings
) -> None:
    wrong = dataclasses.replace(entra_settings, client_secret="not-the-secret")
    with pytest.raises(AuthFailed) as caught:
        EntraTokenProvider(wrong, http).app_token(dataverse_settings.scope)
    assert caught.value.code == "invalid_client"
    assert "not-the-secret" not in str(caught.value)
