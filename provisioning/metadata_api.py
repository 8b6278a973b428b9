"""The Dataverse Web API calls provisioning makes: metadata reads and writes, and one data query.

Requests go through the app's transport (``shared.adapters.http.policy.ServiceCaller``): one retry
policy that honours ``Retry-After``, typed errors, and the CA bundle passed as ``verify=`` on
every request. Reads ask for ``Consistency: Strong`` so a definition created a moment ago is seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests

from provisioning import readback
from provisioning.model import FoundChoice, FoundTable
from shared.adapters.dataverse import odata
from shared.adapters.http.policy import RetryPolicy, ServiceCaller
from shared.config import DataverseSettings, HttpSettings
from shared.errors import NotFound, System

_JSON = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
_STATE_TYPES = ("StateAttributeMetadata", "StatusAttributeMetadata")


def _key(value: str) -> str:
    """A name as the string key of a metadata path (``EntityDefinitions(LogicalName='...')``)."""
    return odata.encode_value(odata.string_literal(value))


class MetadataApi:
    def __init__(self, dataverse: DataverseSettings, http: HttpSettings,
                 token: Callable[[], str], *, solution: str | None = None,
                 policy: RetryPolicy | None = None,
                 session: requests.Session | None = None) -> None:
        self._api_url = dataverse.api_url
        self._token = token
        self._solution = solution
        self._caller = ServiceCaller(System.DATAVERSE, http, session=session, policy=policy)
        self.stats = self._caller.stats

    @property
    def solution(self) -> str | None:
        """The unmanaged solution new components are added to (``MSCRM.SolutionUniqueName``)."""
        return self._solution

    # --- transport -----------------------------------------------------------------------------
    def _send(self, method: str, path: str, operation: str, *, body: Any = None,
              headers: Mapping[str, str] | None = None) -> requests.Response:
        sent = {**_JSON, "Authorization": f"Bearer {self._token()}", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json; charset=utf-8"
        return self._caller.send(method, self._api_url + path, operation, headers=sent,
                                 json=body)

    def _get(self, path: str, operation: str) -> dict[str, Any]:
        response = self._send("GET", path, operation, headers={"Consistency": "Strong"})
        payload: dict[str, Any] = response.json()
        return payload

    def _get_or_none(self, path: str, operation: str) -> dict[str, Any] | None:
        try:
            return self._get(path, operation)
        except NotFound:
            return None

    def _write(self, method: str, path: str, operation: str, body: Any = None, *,
               merge_labels: bool = False) -> requests.Response:
        headers: dict[str, str] = {}
        if self._solution:
            headers["MSCRM.SolutionUniqueName"] = self._solution
        if merge_labels:
            headers["MSCRM.MergeLabels"] = "true"
        return self._send(method, path, operation, body=body, headers=headers)

    # --- reads ---------------------------------------------------------------------------------
    def who_am_i(self) -> dict[str, Any]:
        return self._get("WhoAmI", "WhoAmI")

    def choice(self, name: str) -> FoundChoice | None:
        found = self._get_or_none(f"GlobalOptionSetDefinitions(Name={_key(name)})",
                                  f"read choice {name}")
        return readback.choice(found) if found is not None else None

    def table(self, logical_name: str) -> FoundTable | None:
        """The table with its attributes, option sets and lookups; None when it does not exist."""
        entity_path = f"EntityDefinitions(LogicalName={_key(logical_name)})"
        entity = self._get_or_none(entity_path, f"read table {logical_name}")
        if entity is None:
            return None
        operation = f"read columns of {logical_name}"
        attributes = self._get(f"{entity_path}/Attributes", operation)["value"]
        picklists = self._get(
            f"{entity_path}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
            "?$select=LogicalName&$expand=OptionSet($select=Name,IsGlobal,Options)", operation,
        )["value"]
        states: dict[str, Mapping[str, Any]] = {}
        for type_name in _STATE_TYPES:
            for item in self._get(
                f"{entity_path}/Attributes/Microsoft.Dynamics.CRM.{type_name}"
                "?$select=LogicalName&$expand=OptionSet($select=Options)", operation,
            )["value"]:
                states[item["LogicalName"]] = item.get("OptionSet") or {}
        relationships = self._get(
            f"{entity_path}/ManyToOneRelationships?$select=SchemaName,ReferencedEntity,"
            "ReferencingAttribute,ReferencingEntityNavigationPropertyName",
            f"read lookups of {logical_name}",
        )["value"]
        return readback.table(
            entity, attributes, relationships=relationships, state_sets=states,
            choice_sets={item["LogicalName"]: item.get("OptionSet") or {} for item in picklists},
        )

    def value_in_use(self, entity_set: str, column: str, value: int) -> bool:
        """Whether any row of ``entity_set`` holds ``value`` in ``column``."""
        query = odata.query_string([("$select", column), ("$filter", f"{column} eq {value}"),
                                    ("$top", "1")])
        rows = self._get(f"{entity_set}?{query}",
                         f"look for {column} = {value} in {entity_set}")["value"]
        return bool(rows)

    # --- writes --------------------------------------------------------------------------------
    def create_choice(self, body: Mapping[str, Any]) -> None:
        self._write("POST", "GlobalOptionSetDefinitions", f"create choice {body['Name']}", body)

    def option_action(self, action: str, body: Mapping[str, Any]) -> None:
        # Not ``_write``: these actions take the solution as a parameter (in ``body``).
        self._send("POST", action, f"{action} {body['OptionSetName']} {body['Value']}",
                   body=body)

    def create_table(self, body: Mapping[str, Any]) -> None:
        self._write("POST", "EntityDefinitions", f"create table {body['SchemaName']}", body)

    def update_table(self, metadata_id: str, body: Mapping[str, Any]) -> None:
        self._write("PUT", f"EntityDefinitions({metadata_id})",
                    f"update table {body.get('LogicalName')}", body, merge_labels=True)

    def create_attribute(self, table: str, body: Mapping[str, Any]) -> None:
        self._write("POST", f"EntityDefinitions(LogicalName={_key(table)})/Attributes",
                    f"create column {table}.{body['SchemaName']}", body)

    def update_attribute(self, table: str, metadata_id: str, body: Mapping[str, Any]) -> None:
        self._write("PUT", f"EntityDefinitions(LogicalName={_key(table)})/Attributes"
                           f"({metadata_id})", f"update column {table}.{body.get('LogicalName')}",
                    body, merge_labels=True)

    def delete_attribute(self, table: str, metadata_id: str, name: str) -> None:
        self._send("DELETE", f"EntityDefinitions(LogicalName={_key(table)})/Attributes"
                             f"({metadata_id})", f"delete column {table}.{name}")

    def create_relationship(self, body: Mapping[str, Any]) -> None:
        self._write("POST", "RelationshipDefinitions",
                    f"create lookup {body['ReferencingEntity']}.{body['Lookup']['SchemaName']}",
                    body)

    def publish(self, tables: list[str], choices: list[str]) -> None:
        entities = "".join(f"<entity>{name}</entity>" for name in tables)
        option_sets = "".join(f"<optionset>{name}</optionset>" for name in choices)
        xml = (f"<importexportxml><entities>{entities}</entities>"
               f"<optionsets>{option_sets}</optionsets></importexportxml>")
        self._send("POST", "PublishXml", "publish customizations", body={"ParameterXml": xml})
