"""The data generator: deterministic, counted, with the awkward cases of real data, loadable."""

from __future__ import annotations

import datetime as dt
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
    # Nine Email Suppression rows per account: three resubscribers plus the next account's row
    # for the first, three Request Resubscribe rows and two rows made in CRM.
    assert counted == {"contacts": 400, "leads": 80, "accounts": 40, "ec_emailaccounts": 3,
                       "ec_syncschedules": 9, "ec_emailsuppressions": 27}
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


# --- the SuppressionLists demo -------------------------------------------------------------------
AS_OF = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
ORIGIN_DOTDIGITAL, ORIGIN_CRM = 100000000, 100000001
REASON = {"Unsubscribed": 100000000, "SoftBounced": 100000001, "HardBounced": 100000002,
          "IspComplained": 100000003, "Suppressed": 100000006, "NotAllowed": 100000007,
          "AddedInCrm": 100000010}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def suppression_rows(dataset: dict[str, Any], account_index: int) -> list[dict[str, Any]]:
    account_row = tables(dataset)["ec_emailaccounts"][account_index]["ec_emailaccountid"]
    return [row for row in tables(dataset)["ec_emailsuppressions"]
            if row["_ec_emailaccountid_value"] == account_row]


def contacts_by_key(dataset: dict[str, Any], account_index: int) -> dict[str, dict[str, Any]]:
    account = dataset["dotdigital"]["accounts"][account_index]
    return {key(contact["email"]): contact for contact in account["contacts"]}


def crm_records(dataset: dict[str, Any], address: str) -> list[tuple[str, dict[str, Any]]]:
    return [(table, row) for table in ("contacts", "leads", "accounts")
            for row in tables(dataset)[table] if key(row["emailaddress1"]) == key(address)]


def active_row_keys(dataset: dict[str, Any]) -> set[str]:
    return {key(row["ec_emailaddress"]) for row in tables(dataset)["ec_emailsuppressions"]
            if row["statecode"] == 0}


def resubscribers(dataset: dict[str, Any], account_index: int) -> list[dict[str, Any]]:
    contacts = contacts_by_key(dataset, account_index)
    return [row for row in suppression_rows(dataset, account_index)
            if row["ec_origin"] == ORIGIN_DOTDIGITAL and not row["ec_requestresubscribe"]
            and contacts[key(row["ec_emailaddress"])]["status"] == "Subscribed"]


def test_email_accounts_carry_the_resubscribe_settings(dataset: dict[str, Any]) -> None:
    rows = tables(dataset)["ec_emailaccounts"]
    assert {row["ec_preferredlocale"] for row in rows} == {"en-EN"}
    assert all(row["ec_resubscribereturnurl"].startswith("https://") for row in rows)
    assert [row["ec_updatedonotbulkemail"] for row in rows] == [True, False, False]


def test_every_account_has_a_manual_suppression_lists_schedule(dataset: dict[str, Any]) -> None:
    schedules = [row for row in tables(dataset)["ec_syncschedules"]
                 if row["ec_synctype"] == 100000001]
    accounts = [row["ec_emailaccountid"] for row in tables(dataset)["ec_emailaccounts"]]
    assert sorted(row["_ec_emailaccountid_value"] for row in schedules) == sorted(accounts)
    assert {(row["ec_intervalminutes"], row["ec_syncnow"]) for row in schedules} == {(0, False)}


@pytest.mark.parametrize("account_index", [0, 1, 2])
def test_every_account_has_recent_suppressions_of_several_reasons(
    dataset: dict[str, Any], account_index: int
) -> None:
    weeks_ago = AS_OF - dt.timedelta(days=42)
    with_rows = {key(row["ec_emailaddress"]) for row in suppression_rows(dataset, account_index)}
    recent = [contact for k, contact in contacts_by_key(dataset, account_index).items()
              if "suppression" in contact and k not in with_rows
              and when(contact["suppression"]["dateRemoved"]) >= weeks_ago]
    assert {"Unsubscribed", "HardBounced", "IspComplained", "Suppressed", "SoftBounced",
            "NotAllowed"} <= {contact["status"] for contact in recent}
    dates = [when(contact["suppression"]["dateRemoved"]) for contact in recent]
    assert max(dates) - min(dates) >= dt.timedelta(days=14), "spread over the past weeks"
    held_by = [{table for table, _ in crm_records(dataset, c["email"])} for c in recent]
    assert {"contacts"} in held_by, "a Dynamics contact"
    assert {"leads"} in held_by, "only a lead"
    assert {"accounts"} in held_by, "only an account"
    assert set() in held_by, "nobody in Dynamics"


def test_new_suppressions_of_the_account_with_the_option_are_mostly_not_flagged_yet(
    dataset: dict[str, Any]
) -> None:
    with_rows = active_row_keys(dataset)
    suppressed = {k for k, contact in contacts_by_key(dataset, 0).items()
                  if "suppression" in contact and k not in with_rows}
    flags = [row["donotbulkemail"] for row in tables(dataset)["contacts"]
             if key(row["emailaddress1"]) in suppressed]
    assert flags.count(False) >= 5
    assert flags.count(True) <= len(flags) // 5


@pytest.mark.parametrize("account_index", [0, 1, 2])
def test_resubscribers_have_a_recent_last_subscribed_and_an_active_older_row(
    dataset: dict[str, Any], account_index: int
) -> None:
    found = resubscribers(dataset, account_index)
    assert len(found) >= 3
    contacts = contacts_by_key(dataset, account_index)
    for row in found:
        assert (row["statecode"], row["ec_reason"]) == (0, REASON["Unsubscribed"])
        contact = contacts[key(row["ec_emailaddress"])]
        assert "suppression" not in contact
        last_subscribed = when(contact["dataFields"]["LASTSUBSCRIBED"])
        assert AS_OF - dt.timedelta(days=1) <= last_subscribed <= AS_OF
        assert when(contact["modified"]) == last_subscribed  # so ~modified finds it
        assert when(row["ec_suppressedon"]) < last_subscribed
        assert any(table == "contacts" for table, _ in crm_records(dataset, row["ec_emailaddress"]))


def test_a_resubscriber_still_suppressed_by_another_account_keeps_its_flag(
    dataset: dict[str, Any]
) -> None:
    rows = tables(dataset)["ec_emailsuppressions"]
    for account_index in range(3):
        own = tables(dataset)["ec_emailaccounts"][account_index]["ec_emailaccountid"]
        crossed = [
            row for row in resubscribers(dataset, account_index)
            if any(key(other["ec_emailaddress"]) == key(row["ec_emailaddress"])
                   and other["_ec_emailaccountid_value"] != own and other["statecode"] == 0
                   for other in rows)
        ]
        assert crossed, f"account {account_index}"
        other_index = (account_index + 1) % 3
        for row in crossed:
            other = contacts_by_key(dataset, other_index)[key(row["ec_emailaddress"])]
            assert other["status"] == "Unsubscribed"
    # Brand 1 has the option on: its resubscriber's flag is set and has to stay set.
    [crossed_first] = [row for row in resubscribers(dataset, 0)
                       if key(row["ec_emailaddress"]) in
                       {key(r["ec_emailaddress"]) for r in suppression_rows(dataset, 1)}]
    records = crm_records(dataset, crossed_first["ec_emailaddress"])
    assert records and all(record["donotbulkemail"] for _, record in records)


@pytest.mark.parametrize("account_index", [0, 1, 2])
def test_request_resubscribe_rows_cover_added_challenged_and_refused(
    dataset: dict[str, Any], account_index: int
) -> None:
    requests_ = [row for row in suppression_rows(dataset, account_index)
                 if row["ec_requestresubscribe"]]
    contacts = contacts_by_key(dataset, account_index)
    by_reason = {row["ec_reason"]: row for row in requests_}
    assert sorted(by_reason) == sorted(REASON[name] for name in
                                       ("Suppressed", "Unsubscribed", "HardBounced"))
    names = {value: name for name, value in REASON.items()}
    for row in requests_:
        assert (row["statecode"], row["ec_origin"]) == (0, ORIGIN_DOTDIGITAL)
        assert row["ec_resubscriptionrequestedon"] is None
        contact = contacts[key(row["ec_emailaddress"])]
        assert contact["suppression"]["reason"] == names[row["ec_reason"]]
        assert when(contact["suppression"]["dateRemoved"]) == when(row["ec_suppressedon"])


@pytest.mark.parametrize("account_index", [0, 1, 2])
def test_rows_made_in_crm_are_not_pushed_yet(
    dataset: dict[str, Any], account_index: int
) -> None:
    made = [row for row in suppression_rows(dataset, account_index)
            if row["ec_origin"] == ORIGIN_CRM]
    assert len(made) == 2
    assert all((row["ec_reason"], row["ec_pushedon"], row["statecode"]) ==
               (REASON["AddedInCrm"], None, 0) for row in made)
    known = contacts_by_key(dataset, account_index)
    everywhere = {key(email) for email in dotdigital_emails(dataset)}
    assert [key(row["ec_emailaddress"]) in known for row in made] == [True, False]
    assert key(made[1]["ec_emailaddress"]) not in everywhere


def test_the_suppression_demo_seeds_and_plays_out_in_the_emulators(
    cluster: EmulatorCluster
) -> None:
    small = generate_dataset(contacts=60, accounts=2, seed=5, activities_per_campaign=5)
    loaded = cluster.seed(small)
    assert loaded["dataverse"]["ec_emailsuppressions"] == 18
    account = small["dotdigital"]["accounts"][0]
    email_account = tables(small)["ec_emailaccounts"][0]
    base = f"{cluster.dotdigital_server.base_url}/{account['region']}"
    auth = (account["apiUser"], account["password"])

    def get(path: str, **params: Any) -> Any:
        response = requests.get(base + path, params=params, auth=auth,
                                verify=cluster.ca_bundle, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    since = (AS_OF - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = get("/contacts/v3", **{"~modified": f"gte::{since}",
                                     "data-fields": "LASTSUBSCRIBED",
                                     "include": "channelProperties"})["_items"]
    subscribed = {key(item["identifiers"]["email"]) for item in changed
                  if item["channelProperties"]["email"]["status"] == "subscribed"
                  and item["dataFields"]["LASTSUBSCRIBED"] >= since}
    assert {key(row["ec_emailaddress"]) for row in resubscribers(small, 0)} <= subscribed
    suppressed = {key(row["suppressedContact"]["email"])
                  for row in get("/v2/contacts/suppressed-since/2025-04-01")}
    assert {key(c["email"]) for c in account["contacts"] if "suppression" in c
            and c["suppression"]["dateRemoved"] >= "2025-04-01"} <= suppressed

    expected = {REASON["Suppressed"]: "ContactAdded", REASON["Unsubscribed"]: "ContactChallenged",
                REASON["HardBounced"]: "ContactCannotBeUnsuppressed"}
    for row in suppression_rows(small, 0):
        if not row["ec_requestresubscribe"]:
            continue
        response = requests.post(base + "/v2/contacts/resubscribe", auth=auth, json={
            "unsubscribedContact": {"email": row["ec_emailaddress"]},
            "preferredLocale": email_account["ec_preferredlocale"],
            "returnUrlToUseIfChallenged": email_account["ec_resubscribereturnurl"],
        }, verify=cluster.ca_bundle, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == expected[row["ec_reason"]]
