"""The acceptance: a Dataverse that starts without the connector's schema is provisioned, an
administrator adds an email account, its schedule and contacts through the Web API, and the
connector's opt-in sync (the dev host, as the end-to-end tests run it) lands the opt-in types."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import requests

from devtools.local_stack import LocalStack
from emulators.datagen.crm_rows import secret_name
from provisioning.cli import main
from shared.domain.model import OptInType, SyncStatus, SyncType
from tests.e2e.conftest import stack_for
from tests.e2e.org import Org, value_of
from tests.emulators.dataverse_client import mint_token

CONNECTION_SETTINGS = ("DATAVERSE_URL", "ENTRA_TENANT_ID", "ENTRA_CLIENT_ID",
                       "ENTRA_CLIENT_SECRET", "ENTRA_AUTHORITY_HOST", "OUTBOUND_CA_BUNDLE")


class WebApi:
    """The Web API as an administrator's tool would call it (the connector's app user)."""

    def __init__(self, stack: LocalStack) -> None:
        values = stack.values
        self.url = values["DATAVERSE_URL"]
        self.verify = values["OUTBOUND_CA_BUNDLE"]
        self.token = mint_token(stack.cluster, client_id=values["ENTRA_CLIENT_ID"],
                                audience=self.url)

    def create(self, entity_set: str, row: dict[str, object]) -> str:
        response = requests.post(f"{self.url}/api/data/v9.2/{entity_set}", json=row, headers={
            "Authorization": f"Bearer {self.token}", "OData-Version": "4.0"},
            verify=self.verify, timeout=30)
        assert response.status_code == 204, response.text
        return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_the_opt_in_sync_runs_on_a_provisioned_dataverse(tmp_path: Path) -> None:
    org = Org(email_accounts=1)
    for address, opt_in in (("ada@example.com", "Double"), ("bo@example.com", "Single"),
                            ("cy@example.com", "VerifiedDouble")):
        org.add_dotdigital(0, address, opt_in)
    account = org.dotdigital[0]
    # Dataverse starts with nothing of the connector; the demo secret is an app setting.
    dataset = {"dataverse": {"tables": {"ec_emailaccounts": []}},
               "dotdigital": {"accounts": org.dotdigital}}
    with stack_for(dataset, **{secret_name(account["id"]): account["password"]}) as stack:
        stack.dataverse.configure({"schema": "standard"})
        settings = tmp_path / "local.settings.json"
        settings.write_text(json.dumps({"Values": {
            name: stack.values[name] for name in CONNECTION_SETTINGS}}))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--settings", str(settings), "--json"], environ={}, cwd=tmp_path)
        assert code == 0, err.getvalue()
        assert json.loads(out.getvalue())["counts"]["created"] > 40

        api = WebApi(stack)
        email_account = api.create("ec_emailaccounts", {
            "ec_name": "Brand 1", "ec_accountid": account["id"], "ec_isdefault": True,
            "ec_apiusername": account["apiUser"], "ec_secretname": secret_name(account["id"])})
        api.create("ec_syncschedules", {
            "ec_name": "Brand 1 · ContactOptIn", "ec_synctype": int(SyncType.CONTACT_OPT_IN),
            "ec_intervalminutes": 0, "ec_status": int(SyncStatus.NONE), "ec_syncnow": True,
            "ec_emailaccountid@odata.bind": f"/ec_emailaccounts({email_account})"})
        ids = {address: api.create("contacts", {"lastname": "Person",
                                                "emailaddress1": address})
               for address in ("ada@example.com", "bo@example.com", "cy@example.com")}
        lead = api.create("leads", {"subject": "Enquiry", "lastname": "Lead",
                                    "emailaddress1": "Ada@Example.com"})

        completion = stack.run_until_complete(timeout_s=90)

        assert not completion.timer_failures, completion.timer_failures
        assert not stack.dead_letters(), stack.dead_letters()
        contacts = stack.values_of("contacts")
        assert {address: contacts[row_id] for address, row_id in ids.items()} == {
            "ada@example.com": value_of("Double"), "bo@example.com": value_of("Single"),
            "cy@example.com": int(OptInType.VERIFIED_DOUBLE)}
        assert stack.values_of("leads")[lead] == value_of("Double")
        [schedule] = stack.schedules(SyncType.CONTACT_OPT_IN)
        assert schedule.status is SyncStatus.NONE and not schedule.sync_now
