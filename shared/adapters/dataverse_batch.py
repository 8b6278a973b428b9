"""Build ``$batch`` request bodies and parse their multipart responses (Dataverse Web API).

The format follows the documented wire shape exactly: CRLF line endings, ``application/http``
parts with ``Content-Transfer-Encoding: binary``, and change sets for atomic groups.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _split_parts(text: str, boundary: str) -> list[str]:
    parts: list[str] = []
    for chunk in text.split(f"--{boundary}")[1:]:
        if chunk.startswith("--"):
            break
        parts.append(chunk.lstrip("\r\n"))
    return parts


def _split_head(text: str) -> tuple[dict[str, str], str]:
    head, _, rest = text.replace("\r\n", "\n").partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def parse_batch_response(content_type: str, body: bytes) -> list[BatchPartResult]:
    """Every operation's result in order, change-set parts flattened."""
    results: list[BatchPartResult] = []
    for part in _split_parts(body.decode("utf-8"), _boundary_of(content_type)):
        part_headers, payload = _split_head(part)
        inner_type = part_headers.get("content-type", "")
        if inner_type.lower().startswith("multipart/mixed"):
            results += parse_batch_response(inner_type, payload.encode("utf-8"))
            continue
        status_line, _, http_rest = payload.partition("\n")
        pieces = status_line.split(" ", 2)
        if len(pieces) < 2 or not pieces[1].isdigit():
            raise ValueError(f"unreadable batch part status line {status_line.strip()!r}")
        headers, text = _split_head(http_rest)
        text = text.strip()
        parsed: Any = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        results.append(
            BatchPartResult(
                status=int(pieces[1]), headers=headers, body=parsed,
                content_id=part_headers.get("content-id"),
            )
        )
    return results
