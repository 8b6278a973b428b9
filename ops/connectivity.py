"""The connectivity check of every email account, as the operator needs it: a real
account-info call with the account's API user and password, now.

The app's check (``shared.services.sync.connectivity``) goes through clients that cache
account-info per API user for the life of the worker, which is right for a sync (one call per
account, not per tick) but would hide a password changed since; here every account gets a fresh
client and so a real request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from shared.adapters.dotdigital.client import ApiCredentials, DotdigitalClient, RegionCache
from shared.config import Settings, resolve_secret
from shared.domain.model import EmailAccount
from shared.errors import AppError
from shared.services.sync.connectivity import AccountCheck


def check_accounts(
    accounts: Sequence[EmailAccount], settings: Settings, environ: Mapping[str, str],
    *, each: Callable[[AccountCheck], None] = lambda check: None,
) -> list[AccountCheck]:
    checks = []
    for account in accounts:
        check = _check(account, settings, environ)
        each(check)
        checks.append(check)
    return checks


def _check(account: EmailAccount, settings: Settings, environ: Mapping[str, str]) -> AccountCheck:
    configured = account.dotdigital_account_id
    try:
        credentials = ApiCredentials(account.api_user,
                                     resolve_secret(environ, account.secret_name))
        client = DotdigitalClient(settings.dotdigital.account_info_url, credentials,
                                  settings.http, regions=RegionCache())
        info = client.account_info()
    except AppError as error:
        return AccountCheck(account.row_id, account.name, configured, error=str(error))
    found = str(info.account_id)
    if configured and configured != found:
        return AccountCheck(account.row_id, account.name, configured,
                            api_endpoint=info.api_endpoint,
                            error=f"the API user belongs to dotdigital account {found}, "
                                  f"CRM says {configured}")
    return AccountCheck(account.row_id, account.name, found, api_endpoint=info.api_endpoint)
