"""A thin HTTPS client for the Dataverse emulator tests: a bearer token from the Entra emulator's
admin mint, the standard OData headers, and the multipart body of a ``$batch``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import requests

from emulators.cluster import EmulatorCluster

ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}
DEFAULT_USER = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c01"
OTHER_USER = "9a0c6a51-2f3e-4b7d-8c1e-5d4f3a2b1c02"


def mint_token(cluster: EmulatorCluster, **claims: Any) -> str:
    """``claims``: ``user`` (oid or upn) or ``client_id``, optionally ``audience``."""
    payload = {"audience": cluster.dataverse.base_url, "lifetime_seconds": 86_400, **claims}
    if "user" not in payload and "client_id" not in payload:
        payload["user"] = DEFAULT_USER
    response = requests.post(
        f"{cluster.entra_server.base_url}/_emulator/token", json=payload,
        verify=cluster.ca_bundle, timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


class DataverseClient:
    def __init__(self, cluster: EmulatorCluster, user: str = DEFAULT_USER) -> None:
        self.cluster = cluster
        self.base_url = cluster.dataverse.base_url
        self.api_url = f"{self.base_url}/api/data/v9.2/"
        self.token = mint_token(cluster, user=user)

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None,
        token: str | None = None, **kwargs: Any,
    ) -> requests.Response:
        """``path`` is relative to the API root unless it is an absolute URL."""
        url = path if path.startswith("https://") else self.api_url + path
        auth = {"Authorization": f"Bearer {token or self.token}"}
        sent = {**ODATA_HEADERS, **auth, **(headers or {})}
        return requests.request(
            method, url, headers=sent, verify=self.cluster.ca_bundle, timeout=30, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, entity_set: str, body: dict[str, Any]) -> str:
        """Create a row and return its id, parsed from ``OData-EntityId`` as a client does."""
        response = self.post(entity_set, body)
        assert response.status_code == 204, response.text
        return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")

    def batch(
        self, parts: Sequence[str | Sequence[str]], *, headers: dict[str, str] | None = None,
        line_end: str = "\r\n",
    ) -> requests.Response:
        body, boundary = batch_body(parts, line_end=line_end)
        sent = {"Content-Type": f'multipart/mixed; boundary="{boundary}"', **(headers or {})}
        return self.request("POST", "$batch", headers=sent, data=body.encode("utf-8"))


def operation(
    method: str, url: str, body: str | None = None, *, content_id: str | None = None,
    headers: Sequence[str] = (),
) -> str:
    """One ``application/http`` part (lines joined later with the batch's line ending)."""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    lines += list(headers)
    lines += ["", body or ""]
    return "\n".join(lines)


def batch_body(parts: Sequence[str | Sequence[str]], *, line_end: str) -> tuple[str, str]:
    """Parts are operations (str) or change sets (a sequence of operations)."""
    boundary = f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    for part in parts:
        lines.append(f"--{boundary}")
        if isinstance(part, str):
            lines.append(part)
            continue
        change_set = f"changeset_{uuid.uuid4()}"
        lines += [f"Content-Type: multipart/mixed; boundary={change_set}", ""]
        for inner in part:
            lines += [f"--{change_set}", inner]
        lines.append(f"--{change_set}--")
    lines.append(f"--{boundary}--")
    text = "\n".join(lines) + "\n"
    return text.replace("\n", line_end), boundary


def parse_batch_response(response: requests.Response) -> list[dict[str, Any]]:
    """Each answered operation: ``status``, ``headers``, ``body`` and ``content_id``, in order,
    change set responses flattened (``change_set`` is the index of the change set or None)."""
    content_type = response.headers["Content-Type"]
    boundary = content_type.split("boundary=", 1)[1].strip('"')
    return _parse_parts(response.content.decode("utf-8"), boundary, None)


def _parse_parts(text: str, boundary: str, change_set: int | None) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    chunks = text.split(f"--{boundary}")
    for index, chunk in enumerate(chunks[1:]):
        if chunk.startswith("--"):
            break
        head, _, rest = chunk.strip("\r\n").partition("\r\n\r\n")
        part_headers = _headers(head)
        if part_headers.get("content-type", "").startswith("multipart/mixed"):
            inner = part_headers["content-type"].split("boundary=", 1)[1]
            results += _parse_parts(rest, inner, index)
            continue
        status_head, _, body = rest.partition("\r\n\r\n")
        status_line, _, header_block = status_head.partition("\r\n")
        results.append({
            "status": int(status_line.split(" ")[1]), "status_line": status_line,
            "headers": _headers(header_block), "body": body.strip(),
            "content_id": part_headers.get("content-id"), "change_set": change_set,
        })
    return results


def _headers(block: str) -> dict[str, str]:
    found = {}
    for line in block.split("\r\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            found[name.strip().lower()] = value.strip()
    return found
