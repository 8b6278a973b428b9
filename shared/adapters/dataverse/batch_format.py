"""Build ``$batch`` request bodies and parse their multipart responses (Dataverse Web API).

The format follows the documented wire shape exactly: CRLF line endings, ``application/http``
parts with ``Content-Transfer-Encoding: binary``, and change sets for atomic groups. A failed
part maps to the error class a standalone request with its status would raise (``part_error``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.adapters.http.policy import classify
from shared.errors import BadRequest, IntegrationError, System

CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class BatchOperation:
    method: str
    url: str  # absolute, or relative to the Web API root
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchPartResult:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON or None
    content_id: str | None = None


BatchPart = BatchOperation | Sequence[BatchOperation]


def build_batch(
    parts: Sequence[BatchPart], *, boundary: str | None = None
) -> tuple[str, bytes]:
    """(content type, body) of a batch.

    Each inner sequence is one atomic change set; a bare ``BatchOperation`` is a request outside
    any change set, which is where reads (GET) must go: the service refuses a GET in a change set.
    """
    batch_boundary = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    content_id = 0
    for part in parts:
        if isinstance(part, BatchOperation):
            lines.append(f"--{batch_boundary}")
            lines += _operation_lines(part, None)
            continue
        changeset_boundary = f"changeset_{uuid.uuid4()}"
        lines += [
            f"--{batch_boundary}",
            f"Content-Type: multipart/mixed; boundary={changeset_boundary}",
            "",
        ]
        for operation in part:
            content_id += 1
            lines.append(f"--{changeset_boundary}")
            lines += _operation_lines(operation, content_id)
        lines.append(f"--{changeset_boundary}--")
    lines.append(f"--{batch_boundary}--")
    lines.append("")
    body = CRLF.join(lines).encode("utf-8")
    return f"multipart/mixed; boundary={batch_boundary}", body


def _operation_lines(operation: BatchOperation, content_id: int | None) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{operation.method.upper()} {operation.url} HTTP/1.1"]
    headers = dict(operation.headers)
    if operation.body is not None:
        headers.setdefault("Content-Type", "application/json; type=entry")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("")
    lines.append(json.dumps(operation.body) if operation.body is not None else "")
    return lines


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def _boundary_of(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise ValueError(f"no boundary in content type {content_type!r}")
    return match.group(1)


def _headers(head: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.replace("\r\n", "\n").split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _blank_line(text: str, start: int, stop: int) -> tuple[int, int]:
    """Where the head that starts at ``start`` ends and what follows the blank line begins."""
    found = [(at, at + len(mark)) for mark in ("\r\n\r\n", "\n\n", "\n\r\n")
             if (at := text.find(mark, start, stop)) >= 0]
    return min(found) if found else (stop, stop)


def parse_batch_response(content_type: str, body: bytes) -> list[BatchPartResult]:
    """Every operation's result in order, change-set parts flattened.

    Parts are read in place by offset and each JSON body is parsed straight from the decoded
    text: a lookup answer holds thousands of rows, and copying it part by part (split, strip,
    line-ending rewrites) kept several copies alive at once in every applier session.
    """
    return list(iter_batch_response(content_type, body))


def iter_batch_response(content_type: str, body: bytes) -> Iterator[BatchPartResult]:
    """``parse_batch_response`` part by part: a part's JSON is parsed only when asked for, so
    a caller that converts each part's rows and drops them holds one part's rows at a time."""
    boundary = _boundary_of(content_type)
    text = body.decode("utf-8")
    del body  # the caller hands over the only reference: keep the text, not the bytes too
    yield from _parse_parts(text, boundary)


def _parse_parts(text: str, boundary: str) -> Iterator[BatchPartResult]:
    delimiter = f"--{boundary}"
    position = text.find(delimiter)
    while position >= 0:
        start = position + len(delimiter)
        if text.startswith("--", start):
            break
        position = text.find(delimiter, start)
        yield from _parse_part(text, start, len(text) if position < 0 else position)


def _parse_part(text: str, start: int, stop: int) -> list[BatchPartResult]:
    while start < stop and text[start] in "\r\n":
        start += 1
    head_end, payload = _blank_line(text, start, stop)
    part_headers = _headers(text[start:head_end])
    inner_type = part_headers.get("content-type", "")
    if inner_type.lower().startswith("multipart/mixed"):
        return list(_parse_parts(text[payload:stop], _boundary_of(inner_type)))
    line_end = text.find("\n", payload, stop)
    line_end = stop if line_end < 0 else line_end
    status_line = text[payload:line_end].rstrip("\r")
    pieces = status_line.split(" ", 2)
    if len(pieces) < 2 or not pieces[1].isdigit():
        raise ValueError(f"unreadable batch part status line {status_line.strip()!r}")
    headers_end, content = _blank_line(text, min(line_end + 1, stop), stop)
    headers = _headers(text[min(line_end + 1, stop):headers_end])
    return [BatchPartResult(
        status=int(pieces[1]), headers=headers, body=_json_body(text, content, stop),
        content_id=part_headers.get("content-id"),
    )]


def _json_body(text: str, start: int, stop: int) -> Any:
    while start < stop and text[start].isspace():
        start += 1
    if start >= stop:
        return None
    try:
        parsed, end = _JSON.raw_decode(text, start)
    except ValueError:
        parsed, end = None, -1
    if end < 0 or end > stop or text[end:stop].strip():
        return text[start:stop].replace("\r\n", "\n").strip()
    return parsed


_JSON = json.JSONDecoder()


def part_error(result: BatchPartResult) -> IntegrationError:
    """The same error class a standalone request with this status would raise."""
    standalone = requests.Response()
    standalone.status_code = result.status
    standalone.headers.update(result.headers)
    standalone._content = json.dumps(result.body).encode() if result.body is not None else b""
    return classify(System.DATAVERSE, standalone, "$batch part") or BadRequest(
        System.DATAVERSE, "batch operation failed", status=result.status
    )
