"""Dataverse Web API emulator: ``/api/data/v9.2/`` of one environment, tables from the schema file.

Every API request is authenticated against the Entra emulator (audience = this environment's
URL), admitted by the per-user service protection limits, run by ``DataverseApi`` (directly or as
the operations of a ``$batch``), priced by the cost model and then answered. Notes on fidelity and
the choices made where the reference is silent are in ``emulators/dataverse/README.md``.

Admin (besides the shared ones): ``POST /_emulator/config`` takes ``service_protection``,
``cost_model``, ``lead_table_enabled``, ``bulk_unsupported_tables``, ``collation`` (``CI_AI`` or
``CI_AS``) and ``schema`` (``connector``: the whole schema file, the default; ``standard``: only
the tables Dataverse ships, for provisioning the connector's schema through the metadata API);
``GET`` reports them. The seed's ``users`` section names system users
and switches per-user access on (``security.py``); a reset forgets them.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict
from http import HTTPStatus
from typing import Any

from emulators.clock import Clock
from emulators.dataverse import errors, seeding
from emulators.dataverse.api import BASELINES, DataverseApi
from emulators.dataverse.batch import MAX_OPERATIONS, MAX_URL_LENGTH, run_batch
from emulators.dataverse.calls import ApiCall, Features, Identity, Outcome
from emulators.dataverse.errors import DataverseError
from emulators.dataverse.protection import CostModel, ServiceProtection, parse_settings
from emulators.dataverse.query import collation_named
from emulators.dataverse.resource import MAX_PAGE_SIZE
from emulators.dataverse.schema import Schema, load_schema
from emulators.entra import EntraEmulator, InvalidToken
from emulators.http import Emulator, Request, Response, Route, route

MAX_GET_URL_LENGTH = 32_768
_API = r"/api/data/v9\.[0-2]/"
_METADATA = (
    r"(?:EntityDefinitions|GlobalOptionSetDefinitions|RelationshipDefinitions|InsertOptionValue"
    r"|UpdateOptionValue|DeleteOptionValue|PublishXml|PublishAllXml)(?:[(/].*)?"
)
_ROUTES = (
    ("batch", _API + r"\$batch"),
    ("metadata", _API + _METADATA),
    ("whoami", _API + r"WhoAmI(?:\(\))?"),
    ("bulk", _API + r"[^/()]+/Microsoft\.Dynamics\.CRM\.[A-Za-z]+"),
    ("count", _API + r"[^/()]+/\$count"),
    ("entity", _API + r"[^/()]+\(.*"),
    ("collection", _API + r"[^/()]+"),
)
_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
_VERSION_ROOT = re.compile(_API)
_SETTINGS = frozenset(
    {"service_protection", "cost_model", "lead_table_enabled", "bulk_unsupported_tables",
     "collation", "schema"}
)


class DataverseEmulator(Emulator):
    name = "dataverse"

    def __init__(self, clock: Clock, entra: EntraEmulator, schema: Schema | None = None) -> None:
        self._base_url = ""
        super().__init__(clock)
        self.entra = entra
        self.api = DataverseApi(schema or load_schema(), clock, self.lock)
        self.protection = ServiceProtection(clock)
        self.cost_model = CostModel()

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        # The server assigns the URL after construction; the API layer builds links from it.
        self._base_url = value
        if "api" in self.__dict__:
            self.api.base_url = value

    # --- routes ----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            route(method, pattern, name, self._serve)
            for name, pattern in _ROUTES for method in _METHODS
        ]

    def _serve(self, request: Request, _: re.Match[str]) -> Response:
        started = time.perf_counter()
        try:
            identity = self._authenticate(request)
            if request.method == "GET" and len(self.base_url + request.target) > MAX_GET_URL_LENGTH:
                raise errors.url_too_long(MAX_GET_URL_LENGTH)
            self.protection.admit(identity.oid)
        except DataverseError as failure:
            # Refused answers (401, 414, 429) carry a request id too, as every service answer does.
            refused = failure.response()
            request_id = str(uuid.uuid4())
            refused.headers += [("REQ_ID", request_id), ("x-ms-service-request-id", request_id)]
            return refused
        execution_ms = 0.0
        try:
            try:
                response, outcomes = self._run(request, identity)
            except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer in kind
                unexpected = DataverseError(
                    500, "0x80040216", f"An unexpected error occurred: {exc!r}"
                )
                response, outcomes = unexpected.response(), []
            # A $batch is one request; its operations are priced one by one.
            cost_ms = self.cost_model.cost_ms(
                requests=1, read=sum(o.read for o in outcomes),
                written=sum(o.written for o in outcomes),
                bulk_written=sum(o.bulk_written for o in outcomes),
            )
            if cost_ms > 0:
                time.sleep(cost_ms / 1000.0)
            measured_ms = (time.perf_counter() - started) * 1000.0
            execution_ms = cost_ms if self.cost_model.enabled else measured_ms
        finally:
            self.protection.release(identity.oid, execution_ms)
        remaining_requests, remaining_ms = self.protection.remaining(identity.oid)
        request_id = str(uuid.uuid4())
        response.headers += [
            ("REQ_ID", request_id), ("x-ms-service-request-id", request_id),
            ("x-ms-ratelimit-burst-remaining-xrm-requests", str(remaining_requests)),
            ("x-ms-ratelimit-time-remaining-xrm-requests", f"{remaining_ms:.2f}"),
        ]
        return response

    def _run(self, request: Request, identity: Identity) -> tuple[Response, list[Outcome]]:
        root = _VERSION_ROOT.match(request.path)
        assert root is not None  # the route patterns start with the version root
        path = request.path[root.end():]
        if path == "$batch":
            if request.method != "POST":
                return errors.no_http_resource(self.base_url + request.path).response(), []
            try:
                result = run_batch(
                    request.headers, request.body, self.base_url,
                    execute=lambda call: self.api.execute(call, identity), atomic=self.api.atomic,
                )
            except DataverseError as failure:  # the batch itself is malformed
                return failure.response(), []
            return result.response, result.outcomes
        call = ApiCall(
            method=request.method, path=path, query=request.query_string,
            headers=request.headers, body=request.body,
        )
        outcome = self.api.execute(call, identity)
        return outcome.response, [outcome]

    def _authenticate(self, request: Request) -> Identity:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                claims = self.entra.verify_access_token(token.strip(), self.base_url)
            except InvalidToken:
                pass
            else:
                return Identity(oid=str(claims.get("oid") or claims.get("sub")), claims=claims)
        # The service answers an unauthenticated call with an empty body and tells the client
        # where to get a token.
        challenge = (
            f"Bearer authorization_uri={self.entra.authority.url}/oauth2/authorize, "
            f"resource_id={self.base_url}/"
        )
        raise _Unauthorized(challenge)

    def not_found(self, request: Request) -> Response:
        return errors.no_http_resource(self.base_url + request.path).response()

    def fault_response(self, status: int, retry_after: float | None) -> Response:
        limits = self.protection.limits
        if status == 429:
            failure = DataverseError(
                429, "0x80072322",
                f"Number of requests exceeded the limit of {limits.requests} over time window of "
                f"{limits.window_seconds:g} seconds.",
                [("Retry-After", str(max(1, round(retry_after or 1))))],
            )
        elif status >= 500:
            headers = [("Retry-After", str(max(0, round(retry_after))))] if retry_after else []
            failure = DataverseError(status, "0x80040216", "An unexpected error occurred.", headers)
        else:
            failure = DataverseError(status, "0x0", HTTPStatus(status).phrase)
        return failure.response()

    # --- admin hooks -----------------------------------------------------------------------
    def reset(self) -> None:
        self.api.use_baseline("connector")
        self.api.store.clear()
        self.api.security.clear()
        self.api.features = Features()
        self.protection.reset()
        self.cost_model = CostModel()

    def seed(self, payload: Any) -> dict[str, Any]:
        return seeding.seed_tables(self.api, payload)

    def state(self, request: Request) -> Any:
        return seeding.state(self.api, request.query)

    def export_state(self) -> Any:
        return seeding.export(self.api)

    def describe(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_url": self.api.api_url,
            "scope": f"{self.base_url}/.default",
        }

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        unknown = set(payload) - _SETTINGS
        if unknown:
            raise ValueError(f"unknown dataverse settings: {sorted(unknown)}")
        # Everything is checked before anything changes.
        limits = self.protection.limits
        if "service_protection" in payload:
            limits = parse_settings(limits, payload["service_protection"], "service_protection")
        cost_model = self.cost_model
        if "cost_model" in payload:
            cost_model = parse_settings(cost_model, payload["cost_model"], "cost_model")
        features = self.api.features
        lead_enabled = payload.get("lead_table_enabled", features.lead_table_enabled)
        if not isinstance(lead_enabled, bool):
            raise ValueError("lead_table_enabled must be true or false")
        unsupported = payload.get(
            "bulk_unsupported_tables", sorted(features.bulk_unsupported_tables)
        )
        if not isinstance(unsupported, list) or any(
            name not in self.api.schema.tables for name in unsupported
        ):
            raise ValueError(
                "bulk_unsupported_tables must list table logical names of the schema: "
                f"{sorted(self.api.schema.tables)}"
            )
        collation = collation_named(payload.get("collation", features.collation.name))
        baseline = payload.get("schema", self.api.baseline)
        if baseline not in BASELINES:
            raise ValueError(f"schema must be one of {list(BASELINES)}")
        if "schema" in payload:
            self.api.use_baseline(baseline)
        self.protection.configure(limits)
        self.cost_model = cost_model
        self.api.features = Features(
            lead_table_enabled=lead_enabled, bulk_unsupported_tables=frozenset(unsupported),
            collation=collation,
        )
        return {
            "service_protection": asdict(limits),
            "cost_model": asdict(cost_model),
            "lead_table_enabled": lead_enabled,
            "bulk_unsupported_tables": sorted(unsupported),
            "collation": collation.name,
            "schema": self.api.baseline,
            "max_page_size": MAX_PAGE_SIZE,
            "max_get_url_length": MAX_GET_URL_LENGTH,
            "max_batch_url_length": MAX_URL_LENGTH,
            "max_batch_operations": MAX_OPERATIONS,
        }


class _Unauthorized(DataverseError):
    def __init__(self, challenge: str) -> None:
        super().__init__(401, "", "", [("WWW-Authenticate", challenge)])

    def response(self) -> Response:
        return Response.empty(401, self.headers)
