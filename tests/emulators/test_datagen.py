"""The data generator: deterministic, counted, with the awkward cases of real data, loadable."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from emulators.datagen import generate_dataset, secrets_for
from emulators.datagen.__main__ import main as datagen_main

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
VALID = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")
SUPPRESSION_REASONS = {
    "Unsubscribed", "SoftBounced", "HardBounced", "IspComplained", "MailBlocked",
    "DirectComplaint", "Suppressed", "NotAllowed", "DomainSuppression", "NoMxRecord",
}


@pytest.fixture(scope="module")
def dataset() -> dict[str, Any]:
    return generate_dataset(contacts=400, accounts=3, seed=7)


def key(address: str | None) -> str:
    return (address or "").strip().casefold()


def tables(dataset: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return dataset["dataverse"]["tables"]  # type: ignore[no-any-return]


def dotdigital_emails(dataset: dict[str, Any], account_index: int | None = None) -> list[str]:
    accounts = dataset["dotdigital"]["accounts"]
    chosen = accounts if account_index is None else [accounts[account_index]]
    return [contact["email"] for account in chosen for contact in account["contacts"]]


def crm_emails(dataset: dict[str, Any], table: str) -> list[str | None]:
    return [row["emailaddress1"] for row in tables(dataset)[table]]


def test_same_seed_gives_the_same_data_and_another_seed_does_not() -> None:
    first = generate_dataset(contacts=120, seed=3)
    again = generate_dataset(contacts=120, seed=3)
    other = generate_dataset(contacts=120, seed=4)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert json.dumps(first, sort_keys=True) != json.dumps(other, sort_keys=True)


def test_counts_follow_the_arguments(dataset: dict[str, Any]) -> None:
    counted = {name: len(rows) for name, rows in tables(dataset).items()}
    assert counted == {"contacts": 400, "leads": 80, "accounts": 40, "ec_emailaccounts": 3,
                       "ec_syncschedules": 9}
    accounts = dataset["dotdigital"]["accounts"]
    assert [account["id"] for account in accounts] == [1001, 1002, 1003]
    assert [account["region"] for account in accounts] == ["r1", "r2", "r3"]
    explicit = generate_dataset(contacts=60, accounts=1, leads=5, crm_accounts=0)
    assert [len(tables(explicit)[name]) for name in ("contacts", "leads", "accounts")] == [60, 5, 0]


def test_primary_keys_are_unique_guids(dataset: dict[str, Any]) -> None:
    for table, id_column in (("contacts", "contactid"), ("leads", "leadid"),
                             ("accounts", "accountid"), ("ec_emailaccounts", "ec_emailaccountid")):
        ids = [row[id_column] for row in tables(dataset)[table]]
        assert len(set(ids)) == len(ids)
        assert all(GUID.fullmatch(value) for value in ids)


def test_addresses_have_the_awkward_cases(dataset: dict[str, Any]) -> None:
    emails = dotdigital_emails(dataset, 0)
    assert any(email != email.lower() for email in emails), "mixed case"
    assert any("+" in email.split("@")[0] for email in emails), "plus addressing"
    assert any("'" in email for email in emails), "apostrophe"
    assert any("&" in email for email in emails), "ampersand"
    assert any(not email.isascii() for email in emails), "unicode local part"
    assert all(VALID.match(email) for email in emails)


def test_dynamics_holds_padded_recased_blank_malformed_and_duplicate_addresses(
    dataset: dict[str, Any]
) -> None:
    contacts = crm_emails(dataset, "contacts")
    present = [email for email in contacts if email is not None]
    assert any(email != email.strip() and email.strip() for email in present), "padded"
    dotdigital_exact = set(dotdigital_emails(dataset))
    dotdigital_keys = {key(email) for email in dotdigital_exact}
    assert any(email.strip() not in dotdigital_exact and key(email) in dotdigital_keys
               for email in present), "recased"
    assert any(email is None or not email.strip() for email in contacts), "blank"
    assert any(email.strip() and not VALID.match(email.strip()) for email in present), "malformed"
    counts = Counter(key(email) for email in present if VALID.match(email.strip()))
    assert any(count > 1 for count in counts.values()), "duplicate contacts"


def test_people_are_missing_from_one_side_or_the_other(dataset: dict[str, Any]) -> None:
    crm_keys = {key(email) for table in ("contacts", "leads", "accounts")
                for email in crm_emails(dataset, table)}
    dotdigital_keys = {key(email) for email in dotdigital_emails(dataset)}
    suppressed_only = {key(item["email"]) for account in dataset["dotdigital"]["accounts"]
                       for item in account["suppressions"]}
    assert dotdigital_keys - crm_keys, "dotdigital contacts with no Dynamics record"
    valid_crm = {k for k in crm_keys if VALID.match(k)}
    assert valid_crm - dotdigital_keys - suppressed_only, "Dynamics records with no contact"


def test_one_address_is_on_a_contact_a_lead_and_an_account(dataset: dict[str, Any]) -> None:
    sets = [{key(email) for email in crm_emails(dataset, table) if email}
            for table in ("contacts", "leads", "accounts")]
    assert sets[0] & sets[1] & sets[2]


def test_an_address_is_in_several_accounts_with_different_opt_in_types(
    dataset: dict[str, Any]
) -> None:
    opt_ins: dict[str, set[str]] = {}
    for account in dataset["dotdigital"]["accounts"]:
        for contact in account["contacts"]:
            opt_ins.setdefault(key(contact["email"]), set()).add(contact["optInType"])
    assert max(len(types) for types in opt_ins.values()) == 3


def test_every_suppression_reason_and_plain_suppressions_are_present(
    dataset: dict[str, Any]
) -> None:
    first = dataset["dotdigital"]["accounts"][0]
    suppressed = [c for c in first["contacts"] if c["status"] != "Subscribed"]
    assert {c["status"] for c in suppressed} == SUPPRESSION_REASONS
    assert all(c["suppression"]["reason"] == c["status"] for c in suppressed)
    assert first["suppressions"] and all(
        item["reason"] in SUPPRESSION_REASONS for item in first["suppressions"]
    )
    subscribed = [c for c in first["contacts"] if c["status"] == "Subscribed"]
    assert all(c["dataFields"]["LASTSUBSCRIBED"].endswith("Z") for c in subscribed)


def test_programs_and_campaigns_have_statuses_and_activity(dataset: dict[str, Any]) -> None:
    for account in dataset["dotdigital"]["accounts"]:
        assert {"Draft", "Active", "Deactivated"} <= {p["status"] for p in account["programs"]}
        activities = [row for campaign in account["campaigns"] for row in campaign["activities"]]
        assert activities and any(row.get("opens") for row in activities)
        emails = {c["email"] for c in account["contacts"]}
        assert all(row["email"] in emails for row in activities)


def test_secrets_map_setting_names_to_passwords(dataset: dict[str, Any]) -> None:
    secrets = secrets_for(dataset)
    passwords = {a["id"]: a["password"] for a in dataset["dotdigital"]["accounts"]}
    rows = tables(dataset)["ec_emailaccounts"]
    assert secrets == {row["ec_secretname"]: passwords[row["ec_accountid"]] for row in rows}
    assert sorted(secrets) == [f"DOTDIGITAL_SECRET_ACCOUNT{n}" for n in (1001, 1002, 1003)]
    assert [row["ec_isdefault"] for row in rows] == [True, False, False]


@pytest.mark.parametrize(
    "arguments",
    [{"contacts": -1}, {"contacts": 10, "accounts": 0}, {"contacts": 10, "leads": -2}],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_dataset(**arguments)


def test_scale_path_builds_fifty_thousand_contacts() -> None:
    large = generate_dataset(contacts=50_000, accounts=2, seed=1, activities_per_campaign=50)
    assert len(tables(large)["contacts"]) == 50_000
    first_account = large["dotdigital"]["accounts"][0]["contacts"]
    assert len({key(contact["email"]) for contact in first_account}) == len(first_account)


def test_generated_data_seeds_every_emulator(cluster: EmulatorCluster) -> None:
    small = generate_dataset(contacts=60, accounts=2, seed=5, activities_per_campaign=5)
    for system, server in cluster.servers.items():
        response = requests.post(f"{server.base_url}/_emulator/seed", json=small[system],
                                 verify=cluster.ca_bundle, timeout=30)
        assert response.status_code == 200, (system, response.text)
    dataverse_state = requests.get(
        f"{cluster.dataverse_server.base_url}/_emulator/state", verify=cluster.ca_bundle,
        timeout=30,
    ).json()
    assert len(dataverse_state["tables"]["contacts"]) == 60
    loaded = cluster.dotdigital_server.base_url + "/_emulator/state"
    accounts = requests.get(loaded, verify=cluster.ca_bundle, timeout=30).json()["accounts"]
    assert [account["id"] for account in accounts] == [1001, 1002]


def test_command_line_writes_the_seed_and_the_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, secrets = tmp_path / "seed.json", tmp_path / "secrets.json"
    assert datagen_main(["--contacts", "80", "--accounts", "2", "--seed", "1", "--out", str(out),
                         "--secrets-out", str(secrets)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == generate_dataset(contacts=80, accounts=2, seed=1)
    assert json.loads(secrets.read_text()) == secrets_for(written)
    assert json.loads(capsys.readouterr().out)["contacts"] == 80
