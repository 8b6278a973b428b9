"""The outcome, for people (a table) or for programs (``--json``)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from provisioning.plan import Item

PLANNED = {"create": "would create", "change": "would change", "none": "unchanged",
           "skip": "skipped", "refuse": "refused"}


def shown_status(item: Item, *, allow_destructive: bool) -> str:
    if item.refusal(allow_destructive):
        return "refused"
    return item.status or PLANNED[item.action]


def detail(item: Item, *, allow_destructive: bool) -> str:
    if item.error:
        return item.error
    refusal = item.refusal(allow_destructive)
    if refusal:
        return refusal
    texts = [d.text + (" [destructive]" if d.severity == "destructive" else "")
             for d in item.differences]
    if item.note:
        texts.append(item.note)
    return "; ".join(texts)


def counts(items: list[Item], *, allow_destructive: bool) -> dict[str, int]:
    return dict(Counter(shown_status(item, allow_destructive=allow_destructive)
                        for item in items))


def as_json(items: list[Item], *, url: str, mode: str, result: str, allow_destructive: bool,
            solution: str | None, requests: int) -> str:
    payload: dict[str, Any] = {
        "dataverse_url": url,
        "mode": mode,
        "result": result,
        "allow_destructive": allow_destructive,
        "solution": solution,
        "counts": counts(items, allow_destructive=allow_destructive),
        "requests": requests,
        "items": [
            {
                "kind": item.kind,
                "name": item.name,
                "action": item.action,
                "status": shown_status(item, allow_destructive=allow_destructive),
                "differences": [{"text": d.text, "severity": d.severity}
                                for d in item.differences],
                "note": item.note or None,
                "refusal": item.refusal(allow_destructive),
                "error": item.error,
            }
            for item in items
        ],
    }
    return json.dumps(payload, indent=2)


def as_text(items: list[Item], *, url: str, mode: str, result: str,
            allow_destructive: bool) -> str:
    rows = [("kind", "name", "result", "detail")]
    rows += [(item.kind, item.name, shown_status(item, allow_destructive=allow_destructive),
              detail(item, allow_destructive=allow_destructive)) for item in items]
    widths = [max(len(row[index]) for row in rows) for index in range(3)]
    lines = [f"Dataverse schema of {url} ({mode})", ""]
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths,
                                                                         strict=True))
                     + "  " + row[3])
        if number == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * 6)
    summary = ", ".join(f"{count} {status}" for status, count in
                        sorted(counts(items, allow_destructive=allow_destructive).items()))
    lines += ["", f"result: {result.upper()} ({summary})"]
    return "\n".join(line.rstrip() for line in lines)
