"""An environment for provisioning tests: the session's emulators (HTTPS, local CA), with the
Dataverse emulator holding only the tables Dataverse ships, and the command run in-process."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.cluster import EmulatorCluster
from provisioning.cli import main
from tests.emulators.dataverse_client import ODATA_HEADERS, mint_token

LABEL_LANGUAGE = 1033


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.stdout)
        return payload

    def statuses(self) -> dict[str, str]:
        return {item["name"]: item["status"] for item in self.report["items"]}


class Environment:
    """The emulated environment, the command's connection options, and a Web API client
    acting as the connector's application user."""

    def __init__(self, cluster: EmulatorCluster) -> None:
        self.cluster = cluster
        described = cluster.describe()
        client = described["entra"]["default_client"]
        self.url = described["dataverse"]["base_url"]
        self.api_url = f"{self.url}/api/data/v9.2/"
        self.ca_bundle = described["ca_bundle"]
        self.options = [
            "--dataverse-url", self.url, "--tenant-id", described["entra"]["tenant_id"],
            "--client-id", client["client_id"], "--client-secret", client["client_secret"],
            "--authority-host", described["entra"]["base_url"], "--ca-bundle", self.ca_bundle,
        ]
        self.client_id = client["client_id"]
        self._token: str | None = None

    def provision(self, *extra: str, options: list[str] | None = None,
                  json_report: bool = True) -> Run:
        argv = [*(self.options if options is None else options), *extra]
        if json_report:
            argv.append("--json")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv, environ={}, cwd=Path("/"))
        return Run(code, out.getvalue(), err.getvalue())

    # --- the Web API, as the application user -----------------------------------------------
    @property
    def token(self) -> str:
        if self._token is None:
            self._token = mint_token(self.cluster, client_id=self.client_id, audience=self.url)
        return self._token

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        sent = {**ODATA_HEADERS, "Authorization": f"Bearer {self.token}", **(headers or {})}
        return requests.request(method, self.api_url + path, json=body, headers=sent,
                                verify=self.ca_bundle, timeout=30)

    def get(self, path: str) -> dict[str, Any]:
        response = self.call("GET", path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        payload: dict[str, Any] = response.json()
        return payload

    def create(self, entity_set: str, row: dict[str, Any]) -> str:
        response = self.call("POST", entity_set, row)
        assert response.status_code == 204, (entity_set, response.status_code, response.text)
        return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")

    def metadata_snapshot(self) -> dict[str, Any]:
        """Every table, attribute, lookup and global choice the metadata API shows."""
        snapshot: dict[str, Any] = {
            "choices": self.get("GlobalOptionSetDefinitions")["value"],
            "tables": {},
        }
        for table in self.get("EntityDefinitions")["value"]:
            name = table["LogicalName"]
            key = f"EntityDefinitions(LogicalName='{name}')"
            snapshot["tables"][name] = {
                "table": table,
                "attributes": self.get(f"{key}/Attributes")["value"],
                "lookups": self.get(f"{key}/ManyToOneRelationships")["value"],
            }
        return snapshot

    def configure(self, **settings: Any) -> None:
        response = requests.post(f"{self.url}/_emulator/config", json=settings,
                                 verify=self.ca_bundle, timeout=30)
        assert response.status_code == 200, response.text


def label(text: str, language: int = LABEL_LANGUAGE) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": language}]}


@pytest.fixture
def environment(cluster: EmulatorCluster) -> Iterator[Environment]:
    """A Dataverse without the connector's schema; the emulators are reset afterwards, for the
    tests that share them."""
    cluster.reset()
    env = Environment(cluster)
    env.configure(schema="standard")
    try:
        yield env
    finally:
        cluster.reset()
