"""Dataverse emulator: strings compare under the environment's SQL collation (CI_AI or CI_AS).

Every filter runs twice, on ``emailaddress1`` (indexed) and on ``emailaddress2`` (scanned), which
hold the same value, so the index path is checked against the plain evaluation throughout.
"""

from __future__ import annotations

import json

import pytest
import requests

from emulators.cluster import EmulatorCluster
from tests.emulators.conftest import Admin
from tests.emulators.dataverse_client import DataverseClient

ACCENTS = {
    "accented": "josé@x.com",
    "plain": "jose@x.com",
    "upper_accented": "JOSÉ@X.COM",
    "other": "joseph@x.com",
}
SPACES = {
    "bare": "a@x.com",
    "one_trailing": "a@x.com ",
    "three_trailing": "a@x.com   ",
    "leading": " a@x.com",
    "both": " a@x.com ",
}
WHITESPACE = {
    "bare": "b@x.com",
    "tab": "b@x.com\t",
    "newline": "b@x.com\n",
    "cr": "b@x.com\r",
    "nbsp": "b@x.com\u00a0",
    "leading_tab": "\tb@x.com",
    "leading_nbsp": "\u00a0b@x.com",
}
LIKE = {"leading": " lead@x.com", "trailing": "trail@x.com ", "plain": "plain@x.com",
        "inner": "in ner@x.com"}
# Seeded in this order, so the primary key orders ties: 1 before 9, 3 before 7 before 8.
NAMES = ["émile", "Eve", "ada", "Zoë", "zeta", "Ångström", "ADA", "ada ", "Emile"]


@pytest.fixture
def dv(cluster: EmulatorCluster) -> DataverseClient:
    return DataverseClient(cluster)


def contact_id(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def seed(admin: Admin, emails: dict[str, str]) -> None:
    admin.seed({"tables": {"contacts": [
        {"contactid": contact_id(n), "lastname": label, "emailaddress1": email,
         "emailaddress2": email}
        for n, (label, email) in enumerate(emails.items(), start=1)
    ]}})


def labels(dv: DataverseClient, expression: str) -> list[str]:
    response = dv.get("contacts", params={"$select": "lastname", "$filter": expression})
    assert response.status_code == 200, response.text
    return sorted(row["lastname"] for row in response.json()["value"])


def matched(dv: DataverseClient, expression: str) -> list[str]:
    """Labels matching ``expression`` with ``{col}`` as the indexed, then the scanned column."""
    indexed = labels(dv, expression.replace("{col}", "emailaddress1"))
    assert labels(dv, expression.replace("{col}", "emailaddress2")) == indexed, expression
    return indexed


def in_list(function: str, *values: str) -> str:
    return (f"Microsoft.Dynamics.CRM.{function}(PropertyName='{{col}}',"
            f"PropertyValues={json.dumps(list(values), ensure_ascii=False)})")


def test_collation_defaults_to_ci_ai_and_is_reported(dataverse_admin: Admin) -> None:
    assert dataverse_admin.call("GET", "config")["collation"] == "CI_AI"
    assert dataverse_admin.configure(collation="CI_AS")["collation"] == "CI_AS"
    assert dataverse_admin.call("GET", "config")["collation"] == "CI_AS"


@pytest.mark.parametrize(
    ("collation", "expression", "expected"),
    [
        ("CI_AI", "{col} eq 'jose@x.com'", ["accented", "plain", "upper_accented"]),
        ("CI_AI", "{col} eq 'JOSÉ@x.com'", ["accented", "plain", "upper_accented"]),
        ("CI_AI", "{col} ne 'jose@x.com'", ["other"]),
        ("CI_AI", in_list("In", "jose@x.com"), ["accented", "plain", "upper_accented"]),
        ("CI_AI", in_list("NotIn", "JOSE@X.COM"), ["other"]),
        ("CI_AS", "{col} eq 'jose@x.com'", ["plain"]),
        ("CI_AS", "{col} eq 'josé@x.com'", ["accented", "upper_accented"]),
        ("CI_AS", "{col} ne 'jose@x.com'", ["accented", "other", "upper_accented"]),
        ("CI_AS", in_list("In", "josé@x.com"), ["accented", "upper_accented"]),
        ("CI_AS", in_list("NotIn", "jose@x.com"), ["accented", "other", "upper_accented"]),
        ("CI_AI", "startswith({col},'JOSE')", ["accented", "other", "plain", "upper_accented"]),
        ("CI_AS", "startswith({col},'JOSE')", ["other", "plain"]),
        ("CI_AS", "contains({col},'É@')", ["accented", "upper_accented"]),
    ],
)
def test_accents_match_only_under_ci_ai(
    dv: DataverseClient, dataverse_admin: Admin, collation: str, expression: str,
    expected: list[str],
) -> None:
    dataverse_admin.configure(collation=collation)
    seed(dataverse_admin, ACCENTS)
    assert matched(dv, expression) == expected


@pytest.mark.parametrize(
    ("collation", "literal", "expected"),
    [("CI_AI", "e", ["E", "e", "É", "é"]), ("CI_AI", "É", ["E", "e", "É", "é"]),
     ("CI_AS", "e", ["E", "e"]), ("CI_AS", "É", ["É", "é"])],
)
def test_single_letters_with_and_without_accent(
    dv: DataverseClient, dataverse_admin: Admin, collation: str, literal: str,
    expected: list[str],
) -> None:
    dataverse_admin.configure(collation=collation)
    seed(dataverse_admin, {letter: letter for letter in ["É", "é", "E", "e"]})
    assert sorted(matched(dv, f"{{col}} eq '{literal}'")) == sorted(expected)


@pytest.mark.parametrize("collation", ["CI_AI", "CI_AS"])
def test_case_is_ignored_under_both_collations(
    dv: DataverseClient, dataverse_admin: Admin, collation: str
) -> None:
    dataverse_admin.configure(collation=collation)
    seed(dataverse_admin, {"mixed": "Ada.Lovelace@Example.COM",
                           "lower": "ada.lovelace@example.com", "other": "grace@example.com"})
    for expression in ("{col} eq 'ADA.LOVELACE@example.com'",
                       in_list("In", "ada.LOVELACE@EXAMPLE.com"), "startswith({col},'aDa.')"):
        assert matched(dv, expression) == ["lower", "mixed"]
    assert matched(dv, "{col} ne 'ADA.lovelace@example.com'") == ["other"]


@pytest.mark.parametrize("collation", ["CI_AI", "CI_AS"])
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{col} eq 'a@x.com'", ["bare", "one_trailing", "three_trailing"]),
        ("{col} eq 'A@x.com  '", ["bare", "one_trailing", "three_trailing"]),
        (in_list("In", "a@x.com "), ["bare", "one_trailing", "three_trailing"]),
        ("{col} ne 'a@x.com'", ["both", "leading"]),
        (in_list("NotIn", "a@x.com"), ["both", "leading"]),
        ("{col} eq ' a@x.com'", ["both", "leading"]),
    ],
)
def test_trailing_spaces_are_ignored_by_equality_but_leading_ones_are_not(
    dv: DataverseClient, dataverse_admin: Admin, collation: str, expression: str,
    expected: list[str],
) -> None:
    dataverse_admin.configure(collation=collation)
    seed(dataverse_admin, SPACES)
    assert matched(dv, expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{col} eq 'b@x.com'", ["bare"]),
        ("{col} eq 'b@x.com\t'", ["tab"]),
        ("{col} eq 'b@x.com\t  '", ["tab"]),  # the spaces after the tab are trailing
        (in_list("In", "b@x.com\n"), ["newline"]),
        (in_list("In", "b@x.com\r", "b@x.com\u00a0"), ["cr", "nbsp"]),
        ("{col} eq '\tb@x.com'", ["leading_tab"]),
        ("{col} eq '\u00a0b@x.com'", ["leading_nbsp"]),
        ("{col} ne 'b@x.com'", sorted(set(WHITESPACE) - {"bare"})),
        ("endswith({col},'com')", ["bare", "leading_nbsp", "leading_tab"]),
    ],
)
def test_other_whitespace_is_never_ignored(
    dv: DataverseClient, dataverse_admin: Admin, expression: str, expected: list[str]
) -> None:
    seed(dataverse_admin, WHITESPACE)
    assert matched(dv, expression) == expected


@pytest.mark.parametrize("collation", ["CI_AI", "CI_AS"])
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("startswith({col},' ')", ["leading"]),
        ("endswith({col},' ')", ["trailing"]),
        ("endswith({col},'com')", ["inner", "leading", "plain"]),
        ("endswith({col},'COM ')", ["trailing"]),
        ("contains({col},' ')", ["inner", "leading", "trailing"]),
        ("not endswith({col},' ')", ["inner", "leading", "plain"]),
        ("startswith({col},'plain@x.com ')", []),
        ("startswith({col},'trail@x.com ')", ["trailing"]),
    ],
)
def test_like_functions_keep_trailing_spaces(
    dv: DataverseClient, dataverse_admin: Admin, collation: str, expression: str,
    expected: list[str],
) -> None:
    dataverse_admin.configure(collation=collation)
    seed(dataverse_admin, LIKE)
    assert matched(dv, expression) == expected


def ordered(dv: DataverseClient, orderby: str, page_size: int = 5000) -> list[str]:
    found: list[str] = []
    url: str | None = f"contacts?$select=lastname&$orderby={orderby}"
    while url is not None:
        response = dv.get(url, headers={"Prefer": f"odata.maxpagesize={page_size}"})
        assert response.status_code == 200, response.text
        found += [row["lastname"] for row in response.json()["value"]]
        url = response.json().get("@odata.nextLink")
    return found


@pytest.mark.parametrize(
    ("collation", "orderby", "expected"),
    [
        ("CI_AI", "lastname", ["ada", "ADA", "ada ", "Ångström", "émile", "Emile", "Eve", "zeta",
                               "Zoë"]),
        ("CI_AI", "lastname desc", ["Zoë", "zeta", "Eve", "émile", "Emile", "Ångström", "ada",
                                    "ADA", "ada "]),
        # Accents only break ties between otherwise equal names.
        ("CI_AS", "lastname", ["ada", "ADA", "ada ", "Ångström", "Emile", "émile", "Eve", "zeta",
                               "Zoë"]),
    ],
)
def test_orderby_sorts_by_the_collation_with_ties_in_primary_key_order(
    dv: DataverseClient, dataverse_admin: Admin, collation: str, orderby: str,
    expected: list[str],
) -> None:
    dataverse_admin.configure(collation=collation)
    dataverse_admin.seed({"tables": {"contacts": [
        {"contactid": contact_id(n), "lastname": name} for n, name in enumerate(NAMES, start=1)
    ]}})
    assert ordered(dv, orderby) == expected
    assert ordered(dv, orderby, page_size=2) == expected


@pytest.mark.parametrize(
    ("collation", "expression", "expected"),
    [
        ("CI_AI", "lastname gt 'EMILE'", ["Eve", "zeta", "Zoë"]),
        ("CI_AS", "lastname gt 'EMILE'", ["Eve", "zeta", "Zoë", "émile"]),
        ("CI_AI", "lastname le 'ada'", ["ADA", "ada", "ada "]),
        ("CI_AI", 'Microsoft.Dynamics.CRM.Between(PropertyName=\'lastname\','
                  'PropertyValues=["a","emile"])', ["ADA", "Emile", "ada", "ada ", "Ångström",
                                                    "émile"]),
        ("CI_AS", 'Microsoft.Dynamics.CRM.Between(PropertyName=\'lastname\','
                  'PropertyValues=["a","emile"])', ["ADA", "Emile", "ada", "ada ", "Ångström"]),
    ],
)
def test_relational_comparisons_follow_the_collation_order(
    dv: DataverseClient, dataverse_admin: Admin, collation: str, expression: str,
    expected: list[str],
) -> None:
    dataverse_admin.configure(collation=collation)
    dataverse_admin.seed({"tables": {"contacts": [
        {"contactid": contact_id(n), "lastname": name} for n, name in enumerate(NAMES, start=1)
    ]}})
    assert labels(dv, expression) == sorted(expected)


def test_bad_collation_is_refused_and_changes_nothing(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(collation="CI_AS")
    for bad in ({"collation": "CI_XX"}, {"collation": "ci_ai"}, {"collation": None},
                {"collation": 1}, {"collation": "Latin1_General_CI_AI"},
                {"collation": "CI_AI", "lead_table_enabled": "no"},
                {"collation": "bogus", "lead_table_enabled": False}):
        with pytest.raises(requests.HTTPError) as raised:
            dataverse_admin.call("POST", "config", bad)
        assert raised.value.response.status_code == 400
        if bad.get("lead_table_enabled") is None:
            assert "CI_AI" in raised.value.response.json()["error"]
    config = dataverse_admin.call("GET", "config")
    assert config["collation"] == "CI_AS" and config["lead_table_enabled"] is True
    seed(dataverse_admin, ACCENTS)
    assert matched(dv, "{col} eq 'jose@x.com'") == ["plain"]


def test_reset_restores_ci_ai(dv: DataverseClient, dataverse_admin: Admin) -> None:
    dataverse_admin.configure(collation="CI_AS")
    dataverse_admin.call("POST", "reset")
    assert dataverse_admin.call("GET", "config")["collation"] == "CI_AI"
    seed(dataverse_admin, ACCENTS)
    assert matched(dv, "{col} eq 'jose@x.com'") == ["accented", "plain", "upper_accented"]


def test_index_is_rekeyed_when_the_collation_changes_and_follows_writes(
    cluster: EmulatorCluster, dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(collation="CI_AS")
    spaces = {f"s_{label}": email.replace("a@", "s@") for label, email in SPACES.items()}
    seed(dataverse_admin, {**ACCENTS, **spaces})
    contacts = cluster.dataverse.api.store.tables["contact"]
    assert contacts.candidates("emailaddress2", ["x"]) is None  # really the scanned column

    def indexed(value: str) -> list[str]:
        found = contacts.candidates("emailaddress1", [value])
        assert found is not None
        return sorted(row["lastname"] for row in found)

    assert indexed("jose@x.com") == matched(dv, "{col} eq 'jose@x.com'") == ["plain"]
    assert matched(dv, in_list("In", "JOSÉ@x.com", "s@x.com")) == [
        "accented", "s_bare", "s_one_trailing", "s_three_trailing", "upper_accented"]
    dataverse_admin.configure(collation="CI_AI")
    everyone = ["accented", "plain", "upper_accented"]
    assert indexed("jose@x.com") == matched(dv, "{col} eq 'jose@x.com'") == everyone
    changed = {"emailaddress1": "José@X.com  ", "emailaddress2": "José@X.com  "}
    assert dv.patch(f"contacts({contact_id(4)})", changed).status_code == 204  # "other"
    assert indexed("JOSE@x.com ") == matched(dv, "{col} eq 'jose@x.com'") == sorted(
        [*everyone, "other"])
    dataverse_admin.configure(collation="CI_AS")
    assert indexed("josé@x.com") == matched(dv, "{col} eq 'josé@x.com'") == [
        "accented", "other", "upper_accented"]


def test_large_in_lookup_agrees_with_a_scan(dv: DataverseClient, dataverse_admin: Admin) -> None:
    variants = ["{n}@x.com", "{n}É@x.com", "{n}e@x.com ", " {n}@x.com"]
    seed(dataverse_admin, {f"r{n:04d}": variants[n % 4].format(n=n) for n in range(2000)})
    wanted = [f"{n}@X.COM" for n in range(0, 1200, 4)]  # case only
    wanted += [f"{n}e@x.com" for n in range(1, 1200, 4)]  # the rows hold "É"
    wanted += [f"{n}E@x.com" for n in range(2, 1200, 4)]  # the rows hold a trailing space
    for collation, remainders in (("CI_AI", {0, 1, 2}), ("CI_AS", {0, 2})):
        dataverse_admin.configure(collation=collation)
        expected = [f"r{n:04d}" for n in range(1200) if n % 4 in remainders]
        assert matched(dv, in_list("In", *wanted)) == expected


def test_a_next_link_from_before_a_collation_change_is_refused(
    dv: DataverseClient, dataverse_admin: Admin
) -> None:
    dataverse_admin.configure(collation="CI_AS")
    dataverse_admin.seed({"tables": {"contacts": [
        {"contactid": contact_id(n), "lastname": name} for n, name in enumerate(NAMES, start=1)
    ]}})
    first = dv.get("contacts?$select=lastname&$orderby=lastname",
                   headers={"Prefer": "odata.maxpagesize=2"}).json()
    dataverse_admin.configure(collation="CI_AI")
    response = dv.get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"})
    assert response.status_code == 400
    assert "skiptoken" in response.json()["error"]["message"]
