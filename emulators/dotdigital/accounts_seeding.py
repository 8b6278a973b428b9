"""Loading ``{"accounts": [...]}``: all or nothing, across the core and the feature modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulators.dotdigital.account_seed import SeedError, parse_account
from emulators.dotdigital.account_store import AccountStore

if TYPE_CHECKING:
    from emulators.dotdigital.emulator import DotdigitalEmulator


def seed_accounts(emulator: DotdigitalEmulator, payload: Any) -> dict[str, Any]:
    """Runs under the emulator's lock. Any error leaves core and features as they were."""
    if not isinstance(payload, dict) or set(payload) - {"accounts"}:
        raise SeedError('the dotdigital seed is {"accounts": [...]}')
    raw_accounts = payload.get("accounts", [])
    if not isinstance(raw_accounts, list):
        raise SeedError("accounts must be a list")
    parsed: list[tuple[AccountStore, dict[str, Any]]] = []
    usernames: set[str] = set(emulator.users)
    for index, raw in enumerate(raw_accounts):
        store = parse_account(raw, f"accounts[{index}]", emulator.clock)
        if store.account_id in emulator.stores or any(
            store.account_id == other.account_id for other, _ in parsed
        ):
            raise SeedError(f"accounts[{index}].id {store.account_id} is already seeded")
        for user in store.users:
            if user.username.lower() in usernames:
                raise SeedError(f"accounts[{index}]: API user {user.username!r} already exists")
            usernames.add(user.username.lower())
        parsed.append((store, raw))
    counts: dict[str, int] = {"accounts": len(parsed), "contacts": 0, "suppressions": 0}
    before = _feature_exports(emulator)
    # Features may look contacts up while seeding, so the new accounts are visible first.
    for store, _ in parsed:
        emulator.stores[store.account_id] = store
        for user in store.users:
            emulator.users[user.username.lower()] = (store.account_id, user)
        counts["contacts"] += len(store.contacts)
        counts["suppressions"] += len(store.suppressed)
    try:
        for store, raw in parsed:
            for feature in emulator.features:
                for name, value in feature.seed_account(store.account_id, raw).items():
                    counts[name] = counts.get(name, 0) + value
    except (ValueError, KeyError, TypeError) as error:
        for store, _ in parsed:
            del emulator.stores[store.account_id]
            for user in store.users:
                del emulator.users[user.username.lower()]
        _restore_features(emulator, before)
        raise SeedError(str(error)) from error
    return counts


def _feature_exports(emulator: DotdigitalEmulator) -> dict[int, list[dict[str, Any]]]:
    return {
        account_id: [feature.export_account(account_id) for feature in emulator.features]
        for account_id in emulator.stores
    }


def _restore_features(
    emulator: DotdigitalEmulator, before: dict[int, list[dict[str, Any]]]
) -> None:
    # Features have no "forget one account", so they are rebuilt from their own export.
    for position, feature in enumerate(emulator.features):
        feature.reset()
        for account_id, exports in before.items():
            feature.seed_account(account_id, exports[position])
