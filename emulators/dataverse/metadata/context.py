"""One metadata request: its body, headers and options, the caller's rights, and the answers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from emulators.dataverse.calls import ApiCall, Outcome
from emulators.dataverse.errors import DataverseError
from emulators.dataverse.metadata import failures
from emulators.dataverse.metadata.query import Options, options_from_query, parse_options
from emulators.dataverse.metadata.render import View
from emulators.dataverse.schema import Schema
from emulators.http import Response

if TYPE_CHECKING:
    from emulators.dataverse.api import DataverseApi

_SOLUTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Key:
    """A metadata key: the ``MetadataId``, or an alternate key such as ``LogicalName='x'``."""

    metadata_id: str | None = None
    name: str | None = None  # the alternate key's property
    value: str | None = None

    def __str__(self) -> str:
        return self.metadata_id or f"{self.name}='{self.value}'"


@dataclass
class MetadataCall:
    api: DataverseApi
    call: ApiCall

    @cached_property
    def view(self) -> View:
        api = self.api
        return View(api.schema, api.catalog, api.stable_id, api.api_url, api.hidden_tables)

    @cached_property
    def raw_options(self) -> dict[str, str]:
        return options_from_query(self.call.query)

    def options(self, type_short: str, properties: frozenset[str],
                navigation: frozenset[str] = frozenset()) -> Options:
        return parse_options(self.raw_options, type_short=type_short, properties=properties,
                             navigation=navigation)

    def body(self) -> Any:
        try:
            return json.loads(self.call.body.decode("utf-8")) if self.call.body else None
        except (UnicodeDecodeError, ValueError):
            raise failures.bad_value("body", "a JSON document") from None

    def parameters(self, operation: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        """An action's parameters; an unknown one is the OData deserializer's 400."""
        body = self.body()
        if not isinstance(body, Mapping):
            raise failures.bad_value(operation, "a JSON object of parameters")
        for name in body:
            if name not in allowed and not name.startswith("@"):
                raise DataverseError(
                    400, failures.PAYLOAD,
                    f"The parameter '{name}' in the request payload is not a valid parameter for "
                    f"the operation '{operation}'.",
                )
        return body

    @property
    def merge_labels(self) -> bool:
        return (self.call.headers.get("MSCRM.MergeLabels") or "").strip().lower() == "true"

    @cached_property
    def solution(self) -> str | None:
        name = self.call.headers.get("MSCRM.SolutionUniqueName")
        if name is None:
            return None
        name = name.strip()
        if not _SOLUTION.match(name):
            raise failures.invalid(f"'{name}' is not a solution unique name.")
        return name

    def require_customizer(self, privilege: str) -> None:
        """Metadata writes need a customizer's role: application users have it here, a
        delegated user under enforced security does not."""
        caller = self.call.caller
        if not caller.full:
            raise failures.missing_privilege(caller.principal_id, privilege)

    def record_solution(self, key: str) -> None:
        if self.solution is not None:
            self.api.catalog.solutions[key] = self.solution

    def commit(self, schema: Schema) -> None:
        self.api.replace_schema(schema)
        self.__dict__.pop("view", None)

    # --- answers ---------------------------------------------------------------------------------
    def json(self, payload: Any, status: int = 200) -> Outcome:
        return Outcome(self.api.json_response(status, payload))

    def entity(self, context: str, item: Mapping[str, Any]) -> Outcome:
        return self.json({"@odata.context": f"{self.api.api_url}$metadata#{context}/$entity",
                          **item})

    def collection(self, context: str, items: list[dict[str, Any]]) -> Outcome:
        return self.json({"@odata.context": f"{self.api.api_url}$metadata#{context}",
                          "value": items})

    def created(self, path: str) -> Outcome:
        return Outcome(Response.empty(204, [("OData-Version", "4.0"),
                                            ("OData-EntityId", f"{self.api.api_url}{path}")]))

    @staticmethod
    def no_content() -> Outcome:
        return Outcome(Response.empty(204, [("OData-Version", "4.0")]))
