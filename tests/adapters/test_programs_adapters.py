"""The Programs mirror against the emulators: ``DotdigitalEmailPlatform.programs`` (every status,
``select``/``skip`` pages), ``DataverseCrmPrograms`` (one read, one all-or-nothing write) and
``ProgramsMirror`` over both: disabled new rows, names and statuses that follow dotdigital
while ``ec_enabled`` stays, deactivation instead of deletion, and rationed refreshes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulators.cluster import EmulatorCluster
from shared.adapters.dataverse.client import DataverseClient
from shared.adapters.dataverse.programs import DataverseCrmPrograms, row_id_for
from shared.adapters.dotdigital.platform import DotdigitalEmailPlatform
from shared.adapters.http.policy import RetryPolicy
from shared.config import DataverseSettings, DotdigitalSettings, HttpSettings
from shared.domain.model import EmailAccount
from shared.domain.programs import (
    NAME_LENGTH,
    STATUS_LENGTH,
    NewProgramRow,
    PlatformProgram,
    ProgramsPlan,
)
from shared.errors import PreconditionFailed
from shared.services.programs.mirror import ProgramsMirror, ProgramsRefresh
from tests.adapters.conftest import FAULTY_RULES, admin
from tests.fakes.state import InMemorySyncStateStore

SCHEMA = Path(__file__).resolve().parents[2] / "infra" / "dynamics" / "schema.json"
API_USER = "apiuser-programs@apiconnector.com"
PASSWORD = "Passw0rd!local"
SECRET = "DD_SECRET_PROGRAMS"
DD_ACCOUNT = 3003
T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
STATUSES = ("Draft", "Active", "Deactivated", "ReadOnly")


def _program(program_id: int, name: str, status: str = "Active") -> dict[str, Any]:
    return {"id": program_id, "name": name, "status": status,
            "dateCreated": "2026-01-01T09:00:00.000Z"}


def _seed_dotdigital(cluster: EmulatorCluster, programs: list[dict[str, Any]]) -> None:
    admin(cluster, "dotdigital", "POST", "seed", {"accounts": [{
        "id": DD_ACCOUNT, "apiUser": API_USER, "password": PASSWORD, "region": "r2",
        "name": "Programs test", "programs": programs,
    }]})


def _change_dotdigital(
    cluster: EmulatorCluster, fault_mode: str, programs: list[dict[str, Any]]
) -> None:
    """dotdigital's programs as they are now: the emulator cannot change programs, so its
    account is seeded again from scratch (Dataverse keeps its rows)."""
    admin(cluster, "dotdigital", "POST", "reset")
    if fault_mode == "faulty":  # a reset clears the faults too
        admin(cluster, "dotdigital", "POST", "faults",
              {"seed": 11, "rules": FAULTY_RULES["dotdigital"]})
    _seed_dotdigital(cluster, programs)


def _rows(cluster: EmulatorCluster) -> dict[int, dict[str, Any]]:
    rows = admin(cluster, "dataverse", "GET", "state?table=ec_programs")["tables"]["ec_programs"]
    return {row["ec_dotdigitalprogramid"]: row for row in rows}


def _dataverse_requests(cluster: EmulatorCluster) -> int:
    return int(admin(cluster, "dataverse", "GET", "stats")["requests"])


def _program_requests(cluster: EmulatorCluster) -> int:
    by_route = admin(cluster, "dotdigital", "GET", "stats")["by_route"]
    return int(by_route.get("GET /v2/programs", 0))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def account(cluster: EmulatorCluster) -> EmailAccount:
    row_id = str(uuid.uuid4())
    admin(cluster, "dataverse", "POST", "seed", {"tables": {"ec_emailaccounts": [
        {"ec_emailaccountid": row_id, "ec_name": "Brand"}]}})
    return EmailAccount(row_id=row_id, name="Brand", dotdigital_account_id=str(DD_ACCOUNT),
                        api_user=API_USER, secret_name=SECRET)


@pytest.fixture
def client(
    dataverse_settings: DataverseSettings, http: HttpSettings, app_token: Callable[[], str],
    fast_policy: RetryPolicy,
) -> DataverseClient:
    app_token()  # the token is fetched (and cached) before the request counts start
    return DataverseClient(dataverse_settings, http, app_token, policy=fast_policy)


@pytest.fixture
def crm(client: DataverseClient) -> DataverseCrmPrograms:
    return DataverseCrmPrograms(client)


@pytest.fixture
def platform(
    cluster: EmulatorCluster, http: HttpSettings, fast_policy: RetryPolicy
) -> DotdigitalEmailPlatform:
    info_url = cluster.describe()["dotdigital"]["account_info_url"]
    return DotdigitalEmailPlatform(DotdigitalSettings(info_url), http, {SECRET: PASSWORD},
                                   policy=fast_policy)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mirror(
    platform: DotdigitalEmailPlatform, crm: DataverseCrmPrograms, clock: Clock
) -> ProgramsMirror:
    return ProgramsMirror(platform, crm, InMemorySyncStateStore(clock=clock),
                          min_interval_s=300, clock=clock)


# --- the schema -----------------------------------------------------------------------------------
def test_the_rules_clip_to_the_schemas_column_sizes() -> None:
    table = next(t for t in json.loads(SCHEMA.read_text(encoding="utf-8"))["tables"]
                 if t["logical_name"] == "ec_program")
    sizes = {column["name"]: column.get("max_length") for column in table["columns"]}
    assert (sizes["ec_name"], sizes["ec_status"]) == (NAME_LENGTH, STATUS_LENGTH)


# --- dotdigital -----------------------------------------------------------------------------------
def test_programs_reads_every_status_over_pages(
    cluster: EmulatorCluster, platform: DotdigitalEmailPlatform, account: EmailAccount
) -> None:
    seeded = [_program(n, f"Program {n}", STATUSES[n % 4]) for n in range(1, 6)]
    _seed_dotdigital(cluster, seeded)
    programs = platform.programs(account, page_size=2)
    assert programs == [PlatformProgram(n, f"Program {n}", STATUSES[n % 4])
                        for n in range(1, 6)]


# --- the mirror over both -------------------------------------------------------------------------
def test_the_mirror_follows_dotdigital_and_keeps_the_administrators_choice(
    cluster: EmulatorCluster, fault_mode: str, mirror: ProgramsMirror,
    crm: DataverseCrmPrograms, client: DataverseClient, account: EmailAccount, clock: Clock,
) -> None:
    _seed_dotdigital(cluster, [_program(1, "Birthday", "Active"),
                               _program(2, "Welcome", "Draft"),
                               _program(3, "Winback", "Deactivated"),
                               _program(4, "Recovered", "ReadOnly")])
    first = mirror.refresh(account)
    assert first == ProgramsRefresh(account.row_id, refreshed=True, created=4)
    rows = _rows(cluster)
    assert {n: (r["ec_name"], r["ec_status"], r["ec_enabled"], r["statecode"], r["statuscode"],
                r["_ec_emailaccountid_value"]) for n, r in rows.items()} == {
        1: ("Birthday", "Active", False, 0, 1, account.row_id),
        2: ("Welcome", "Draft", False, 0, 1, account.row_id),
        3: ("Winback", "Deactivated", False, 0, 1, account.row_id),
        4: ("Recovered", "ReadOnly", False, 0, 1, account.row_id),
    }
    assert rows[1]["ec_programid"] == row_id_for(account.row_id, 1)
    assert crm.enabled_programs(account.row_id) == []

    # An administrator offers two programs; in dotdigital one is renamed, one deactivated and
    # one deleted.
    client.update("ec_programs", rows[1]["ec_programid"], {"ec_enabled": True})
    client.update("ec_programs", rows[3]["ec_programid"], {"ec_enabled": True})
    _change_dotdigital(cluster, fault_mode, [_program(1, "Birthday 2026", "Active"),
                                             _program(2, "Welcome", "Deactivated"),
                                             _program(4, "Recovered", "ReadOnly")])
    clock.now += dt.timedelta(seconds=301)
    second = mirror.refresh(account)
    assert second == ProgramsRefresh(account.row_id, refreshed=True, updated=2,
                                     deactivated=1, unchanged=1)
    rows = _rows(cluster)
    assert (rows[1]["ec_name"], rows[1]["ec_enabled"], rows[1]["statecode"]) == (
        "Birthday 2026", True, 0)
    assert (rows[2]["ec_status"], rows[2]["ec_enabled"]) == ("Deactivated", False)
    assert (rows[3]["ec_name"], rows[3]["ec_enabled"], rows[3]["statecode"],
            rows[3]["statuscode"]) == ("Winback", True, 1, 2)  # kept, inactive
    enabled = crm.enabled_programs(account.row_id)
    assert [(p.program_id, p.name, p.status, p.enabled, p.active) for p in enabled] == [
        (1, "Birthday 2026", "Active", True, True)]

    # The deleted program is recovered: its row is active again, still enabled.
    _change_dotdigital(cluster, fault_mode, [_program(1, "Birthday 2026", "Active"),
                                             _program(2, "Welcome", "Deactivated"),
                                             _program(3, "Winback", "ReadOnly"),
                                             _program(4, "Recovered", "ReadOnly")])
    third = mirror.refresh(account, force=True)
    assert third == ProgramsRefresh(account.row_id, refreshed=True, updated=1, unchanged=3)
    rows = _rows(cluster)
    assert (rows[3]["ec_status"], rows[3]["ec_enabled"], rows[3]["statecode"],
            rows[3]["statuscode"]) == ("ReadOnly", True, 0, 1)
    assert [p.program_id for p in crm.enabled_programs(account.row_id)] == [1, 3]


def test_rows_of_other_accounts_copies_and_rows_without_a_program_are_left_alone(
    cluster: EmulatorCluster, mirror: ProgramsMirror, crm: DataverseCrmPrograms,
    account: EmailAccount,
) -> None:
    other = str(uuid.uuid4())
    copy_id, loose_id, foreign_id = (str(uuid.uuid4()) for _ in range(3))
    admin(cluster, "dataverse", "POST", "seed", {"tables": {
        "ec_emailaccounts": [{"ec_emailaccountid": other, "ec_name": "Other"}],
        "ec_programs": [
            {"ec_programid": copy_id, "ec_name": "Copy", "ec_dotdigitalprogramid": 1,
             "ec_status": "Draft", "ec_enabled": True, "_ec_emailaccountid_value": account.row_id},
            {"ec_programid": loose_id, "ec_name": "Typed by hand", "ec_enabled": True,
             "_ec_emailaccountid_value": account.row_id},
            {"ec_programid": foreign_id, "ec_name": "Theirs", "ec_dotdigitalprogramid": 9,
             "ec_status": "Active", "_ec_emailaccountid_value": other},
        ]}})
    _seed_dotdigital(cluster, [_program(1, "Birthday", "Active"), _program(2, "Welcome")])
    result = mirror.refresh(account)
    # Program 1 has one row (the copy): it is the mirrored one, so it takes the new values.
    assert result == ProgramsRefresh(account.row_id, refreshed=True, created=1, updated=1)
    state = admin(cluster, "dataverse", "GET", "state?table=ec_programs")["tables"]["ec_programs"]
    by_id = {row["ec_programid"]: row for row in state}
    assert (by_id[copy_id]["ec_name"], by_id[copy_id]["ec_enabled"]) == ("Birthday", True)
    assert by_id[loose_id]["statecode"] == 0 and by_id[foreign_id]["statecode"] == 0
    assert len(state) == 4


def test_a_creation_that_raced_fails_whole_and_writes_nothing(
    cluster: EmulatorCluster, crm: DataverseCrmPrograms, account: EmailAccount
) -> None:
    crm.apply(account.row_id, ProgramsPlan(create=(NewProgramRow(1, "A", "Active"),)))
    racing = ProgramsPlan(create=(NewProgramRow(2, "B", "Active"),
                                  NewProgramRow(1, "A", "Active")))
    with pytest.raises(PreconditionFailed):
        crm.apply(account.row_id, racing)
    assert sorted(_rows(cluster)) == [1]


@pytest.mark.exact_requests
def test_requests_one_per_1000_programs_one_read_and_at_most_one_write(
    cluster: EmulatorCluster, mirror: ProgramsMirror, platform: DotdigitalEmailPlatform,
    account: EmailAccount, clock: Clock,
) -> None:
    long_name = "N" * 255
    programs = [_program(n, long_name if n == 1 else f"Program {n}", STATUSES[n % 4])
                for n in range(1, 2501)]
    _seed_dotdigital(cluster, programs)
    platform.describe_account(account)  # the region is found before the counts start
    admin(cluster, "dotdigital", "DELETE", "stats")
    admin(cluster, "dataverse", "DELETE", "stats")

    first = mirror.refresh(account)
    assert first == ProgramsRefresh(account.row_id, refreshed=True, created=2500)
    assert _program_requests(cluster) == 3  # 1000 + 1000 + 500
    assert _dataverse_requests(cluster) == 2  # the rows, then one $batch
    assert _rows(cluster)[1]["ec_name"] == "N" * NAME_LENGTH

    clock.now += dt.timedelta(seconds=299)
    assert mirror.refresh(account) == ProgramsRefresh(account.row_id, refreshed=False)
    assert (_program_requests(cluster), _dataverse_requests(cluster)) == (3, 2)

    forced = mirror.refresh(account, force=True)
    assert forced == ProgramsRefresh(account.row_id, refreshed=True, unchanged=2500)
    assert (_program_requests(cluster), _dataverse_requests(cluster)) == (6, 3)  # no write
