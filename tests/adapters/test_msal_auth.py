"""EntraTokenProvider (MSAL) against the Entra ID emulator."""

from __future__ import annotations

import dataclasses

import jwt
import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.identity.entra import EntraTokenProvider
from shared.config import DataverseSettings, EntraSettings, HttpSettings
from shared.errors import AuthFailed, TransientError, is_permanent
from tests.adapters.conftest import admin


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


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_throttled_or_failing_token_endpoint_is_transient_not_an_auth_failure(
    cluster: EmulatorCluster, entra_settings: EntraSettings, http: HttpSettings,
    dataverse_settings: DataverseSettings, status: int,
) -> None:
    # A batch that meets an Entra outage must be retried, not dead-lettered as permanent.
    admin(cluster, "entra", "POST", "faults", {"rules": [{"path": "*token*", "status": status}]})
    with pytest.raises(TransientError) as caught:
        EntraTokenProvider(entra_settings, http).app_token(dataverse_settings.scope)
    assert not is_permanent(caught.value)
