"""``POST /$batch``: multipart/mixed requests, change sets, ``Content-ID`` references.

The parser is as strict as the service: the boundary comes from the ``Content-Type`` header, every
line ends in CRLF (a bare LF gets the documented "Stream was not readable." 400), each part is
``application/http``, change sets hold no GET, and a batch holds at most 1000 operations. Requests
outside change sets run in order and stay done; a change set runs inside one transaction.
Without ``Prefer: odata.continue-on-error`` the first failure ends the batch with a 400 whose
body is that single failing part.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from emulators.dataverse import errors
from emulators.dataverse.calls import ApiCall, Outcome
from emulators.dataverse.errors import DataverseError
from emulators.dataverse.resource import parse_preferences
from emulators.http import Headers, Response

MAX_OPERATIONS = 1000
MAX_URL_LENGTH = 65_536
_VERSION_ROOT = re.compile(r"^/api/data/v9\.[0-2]/")
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


@dataclass
class BatchOperation:
    method: str
    url: str
    headers: Headers
    body: bytes
    content_id: str | None


@dataclass
class ChangeSet:
    operations: list[BatchOperation] = field(default_factory=list)


@dataclass
class BatchResult:
    response: Response
    outcomes: list[Outcome]


class _ChangeSetFailed(Exception):
    def __init__(self, outcome: Outcome, operation: BatchOperation) -> None:
        super().__init__("change set failed")
        self.outcome = outcome
        self.operation = operation


def run_batch(
    headers: Headers, body: bytes, base_url: str, execute: Callable[[ApiCall], Outcome],
    atomic: Callable[[], object],
) -> BatchResult:
    """Parse and run a batch; ``execute`` runs one operation, ``atomic()`` opens a transaction."""
    items = parse_batch(headers.get("Content-Type"), body)
    continue_on_error = parse_preferences(headers).continue_on_error
    boundary = f"batchresponse_{uuid.uuid4()}"
    parts: list[bytes] = []
    outcomes: list[Outcome] = []
    for item in items:
        if isinstance(item, BatchOperation):
            outcome = _run_operation(item, base_url, {}, execute)
            outcomes.append(outcome)
            rendered = _render_part(outcome, item)
            if outcome.response.status >= 400 and not continue_on_error:
                return BatchResult(_multipart(400, boundary, [rendered]), outcomes)
            parts.append(rendered)
            continue
        try:
            rendered = _run_change_set(item, base_url, execute, atomic, outcomes)
        except _ChangeSetFailed as failure:
            rendered = _render_part(failure.outcome, failure.operation)
            if not continue_on_error:
                return BatchResult(_multipart(400, boundary, [rendered]), outcomes)
        parts.append(rendered)
    return BatchResult(_multipart(200, boundary, parts), outcomes)


def _run_change_set(
    change_set: ChangeSet, base_url: str, execute: Callable[[ApiCall], Outcome],
    atomic: Callable[[], object], outcomes: list[Outcome],
) -> bytes:
    references: dict[str, str] = {}
    rendered: list[bytes] = []
    with atomic():  # type: ignore[attr-defined]
        for operation in change_set.operations:
            outcome = _run_operation(operation, base_url, references, execute)
            outcomes.append(outcome)
            if outcome.response.status >= 400:
                raise _ChangeSetFailed(outcome, operation)
            if operation.content_id and outcome.entity_path:
                references[f"${operation.content_id}"] = outcome.entity_path
            rendered.append(_render_part(outcome, operation))
    boundary = f"changesetresponse_{uuid.uuid4()}"
    inner = _join(boundary, rendered)
    return (
        f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode("ascii") + inner
    )


def _run_operation(
    operation: BatchOperation, base_url: str, references: dict[str, str],
    execute: Callable[[ApiCall], Outcome],
) -> Outcome:
    try:
        call = _call(operation, base_url, references)
    except DataverseError as failure:  # an operation that cannot be addressed fails alone
        return Outcome(failure.response())
    return execute(call)


def _call(operation: BatchOperation, base_url: str, references: dict[str, str]) -> ApiCall:
    def resolve(value: str) -> str:
        head, _, rest = value.partition("/")
        if head not in references:
            raise DataverseError(
                400, "0x0", f"Content-ID Reference: '{head}' does not exist in the batch context."
            )
        return "/" + references[head] + (f"/{rest}" if rest else "")

    url = operation.url
    if url.startswith("$"):
        url = "/api/data/v9.2" + resolve(url)
    elif url.lower().startswith(("https://", "http://")):
        parts = urlsplit(url)
        url = parts.path + (f"?{parts.query}" if parts.query else "")
    elif not url.startswith("/"):
        url = "/api/data/v9.2/" + url
    if len(base_url) + len(url) > MAX_URL_LENGTH:
        raise errors.url_too_long(MAX_URL_LENGTH)
    root = _VERSION_ROOT.match(url)
    if root is None:
        raise errors.no_http_resource(base_url + url)
    path, _, query = url[root.end():].partition("?")
    return ApiCall(
        method=operation.method, path=path, query=query, headers=operation.headers,
        body=operation.body, resolve_reference=resolve,
    )


def parse_batch(content_type: str | None, body: bytes) -> list[BatchOperation | ChangeSet]:
    boundary = _boundary(content_type, "multipart/mixed")
    if re.search(rb"(?<!\r)\n", body):
        raise errors.payload_error("", "System.ArgumentException: Stream was not readable.")
    items: list[BatchOperation | ChangeSet] = []
    count = 0
    for headers, content in _split(body, boundary):
        part_type = headers.get("Content-Type") or ""
        if part_type.lower().startswith("multipart/mixed"):
            change_set = ChangeSet()
            for inner_headers, inner in _split(content, _boundary(part_type, "multipart/mixed")):
                operation = _operation(inner_headers, inner)
                if operation.method == "GET":
                    raise DataverseError(
                        400, "0x80048d19",
                        "An invalid HTTP method 'GET' was detected for a request in a change set. "
                        "Requests in change sets only support the HTTP methods 'POST', 'PUT', "
                        "'DELETE', and 'PATCH'.",
                    )
                change_set.operations.append(operation)
            count += len(change_set.operations)
            items.append(change_set)
        else:
            items.append(_operation(headers, content))
            count += 1
        if count > MAX_OPERATIONS:
            raise DataverseError(
                400, "0x80048d19",
                "The current batch message contains too many parts. Only batch messages with a "
                f"maximum number of '{MAX_OPERATIONS}' query operations and change sets are "
                "allowed.",
            )
    return items


def _boundary(content_type: str | None, expected: str) -> str:
    found = _BOUNDARY.search(content_type or "")
    if not (content_type or "").lower().startswith(expected) or found is None:
        raise DataverseError(
            400, "0x80048d19",
            f"The content type '{content_type}' is not a valid batch content type: it must be "
            "'multipart/mixed' with a boundary parameter.",
        )
    return found.group(1) or found.group(2)


def _split(body: bytes, boundary: str) -> list[tuple[Headers, bytes]]:
    delimiter = b"\r\n--" + boundary.encode("ascii")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2 or not any(chunk.startswith(b"--") for chunk in chunks[1:]):
        raise errors.payload_error("", "System.ArgumentException: Stream was not readable.")
    parts: list[tuple[Headers, bytes]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if not chunk.startswith(b"\r\n"):
            raise errors.payload_error("", "System.ArgumentException: Stream was not readable.")
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        parts.append((_headers(head), content))
    return parts


def _operation(headers: Headers, content: bytes) -> BatchOperation:
    if (headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/http":
        raise DataverseError(
            400, "0x80048d19",
            "The MIME type of a batch operation must be 'application/http'.",
        )
    encoding = headers.get("Content-Transfer-Encoding")
    if encoding is not None and encoding.strip().lower() != "binary":
        raise DataverseError(
            400, "0x80048d19",
            f"The 'Content-Transfer-Encoding' header value '{encoding}' is invalid. The only "
            "supported content transfer encoding is 'binary'.",
        )
    head, _, body = content.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    request_line = lines[0].decode("utf-8", "replace").split(" ")
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
        raise DataverseError(
            400, "0x80048d19", f"The HTTP request line '{' '.join(request_line)}' is invalid."
        )
    return BatchOperation(
        method=request_line[0].upper(), url=request_line[1],
        headers=_headers(b"\r\n".join(lines[1:])), body=body.strip(),
        content_id=headers.get("Content-ID"),
    )


def _headers(block: bytes) -> Headers:
    items = []
    for line in block.decode("utf-8", "replace").split("\r\n"):
        if line.strip():
            name, _, value = line.partition(":")
            items.append((name.strip(), value.strip()))
    return Headers(items)


def _render_part(outcome: Outcome, operation: BatchOperation) -> bytes:
    response = outcome.response
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if operation.content_id:
        lines.append(f"Content-ID: {operation.content_id}")
    lines += ["", f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
    entity_id = response.header("OData-EntityId")
    if entity_id and operation.method == "POST":
        lines.append(f"Location: {entity_id}")
    lines += [f"{name}: {value}" for name, value in response.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + response.body


def _join(boundary: str, parts: list[bytes]) -> bytes:
    delimiter = f"--{boundary}\r\n".encode("ascii")
    body = b"".join(delimiter + part + b"\r\n" for part in parts)
    return body + f"--{boundary}--\r\n".encode("ascii")


def _multipart(status: int, boundary: str, parts: list[bytes]) -> Response:
    headers = [
        ("Content-Type", f"multipart/mixed; boundary={boundary}"), ("OData-Version", "4.0"),
    ]
    return Response(status, headers, _join(boundary, parts))
