"""A client of one emulator's admin API (``/_emulator/``), for ``make run``, tests and benchmarks.

Admin calls are not counted in the emulators' request statistics and never hit injected faults,
so a test can read and change data mid-run without disturbing what the app's requests show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

_TIMEOUT_S = 60.0
# Columns the service maintains: a rewritten row must get fresh ones, as an edit in CRM would.
_SERVICE_COLUMNS = ("versionnumber", "modifiedon", "@odata.etag")


class EmulatorAdminError(RuntimeError):
    """The emulator refused an admin call (its message names the problem)."""


class EmulatorAdmin:
    def __init__(self, base_url: str, ca_bundle: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        # Passed on every call: an environment REQUESTS_CA_BUNDLE would override a session's.
        self._verify = ca_bundle

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, *, body: object = None,
              params: Mapping[str, str] | None = None) -> Any:
        url = f"{self.base_url}/_emulator/{path}"
        response = self._session.request(method, url, json=body, params=params,
                                         verify=self._verify, timeout=_TIMEOUT_S)
        if response.status_code >= 400:
            raise EmulatorAdminError(f"{method} {url}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    # --- data ------------------------------------------------------------------------------------
    def seed(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Load data (insert or replace by key); a bad payload loads nothing."""
        result: dict[str, Any] = self._call("POST", "seed", body=payload)
        return result

    def state(self, **filters: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state", params=filters)
        return result

    def rows(self, entity_set: str, **filters: str) -> list[dict[str, Any]]:
        """Dataverse: the rows of one table, optionally where ``column == value``."""
        rows: list[dict[str, Any]] = self.state(table=entity_set, **filters)["tables"][entity_set]
        return rows

    def update_rows(self, entity_set: str, changes: Mapping[str, Mapping[str, Any]],
                    *, primary_key: str) -> None:
        """Dataverse: change columns of existing rows, as an administrator's edit in CRM would.

        ``changes`` maps a row id to the columns to set. An unknown id is an error and nothing
        is written.
        """
        current = {str(row[primary_key]): row for row in self.rows(entity_set)}
        missing = sorted(set(changes) - set(current))
        if missing:
            raise EmulatorAdminError(f"{entity_set} has no rows with ids {missing}")
        edited = []
        for row_id, columns in changes.items():
            row = {k: v for k, v in current[row_id].items() if k not in _SERVICE_COLUMNS}
            edited.append({**row, **columns})
        self.seed({"tables": {entity_set: edited}})

    # --- behaviour -------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "config")
        return result

    def configure(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "config", body=payload)
        return result

    def post(self, path: str, body: object) -> Any:
        """Any other admin call (``POST /_emulator/<path>``), e.g. a feature's config."""
        return self._call("POST", path, body=body)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def clear_stats(self) -> None:
        self._call("DELETE", "stats")

    def set_faults(self, rules: list[Mapping[str, Any]], *, seed: int | None = None) -> None:
        """Replace the fault rules (see ``emulators/faults.py`` for the rule format)."""
        body: dict[str, Any] = {"rules": rules}
        if seed is not None:
            body["seed"] = seed
        self._call("POST", "faults", body=body)

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the emulators' shared clock (token expiry, since-dates), not the app's."""
        result: dict[str, Any] = self._call("POST", "clock", body={"advance_seconds": seconds})
        return result
