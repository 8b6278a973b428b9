"""Where the console finds the app settings, in this order:

1. ``--settings FILE``: a ``local.settings.json``-style file (``{"Values": {...}}``), or the list
   ``az functionapp config appsettings list`` prints (``[{"name": ..., "value": ...}]``), so the
   deployed app's settings can be used as they are;
2. the environment, when it holds the app's settings (``DATAVERSE_URL`` set);
3. the running local stack's file (``.run/local-stack.json``, written by ``make run``), so that
   ``python -m ops status`` in a second terminal needs no option at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_FILE = REPO_ROOT / ".run" / "local-stack.json"
# Settings that name files: a relative path in a settings file is relative to that file.
_PATH_SETTINGS = ("OUTBOUND_CA_BUNDLE", "LOCAL_QUEUE_DIR")


@dataclass(frozen=True)
class SettingsSource:
    kind: str  # "settings file", "environment" or "local stack"
    where: str
    values: dict[str, str]

    @property
    def description(self) -> str:
        return self.kind if self.kind == "environment" else f"{self.kind} {self.where}"


def find_settings(
    path: str | None, environ: Mapping[str, str], stack_file: Path = STACK_FILE
) -> SettingsSource:
    if path:
        return SettingsSource("settings file", path, read_settings_file(Path(path)))
    if environ.get("DATAVERSE_URL"):
        return SettingsSource("environment", "environment", dict(environ))
    if stack_file.exists():
        return SettingsSource("local stack", str(stack_file), read_stack_file(stack_file))
    raise UsageError("no app settings found: pass --settings FILE, set the app settings in the "
                     "environment, or start the local stack with `make run`")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read settings file {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"settings file {path} is not JSON: {error}") from None


def read_settings_file(path: Path) -> dict[str, str]:
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("Values"), dict):
        raw: dict[str, Any] = data["Values"]
    elif isinstance(data, list) and all(isinstance(item, dict) and "name" in item
                                        for item in data):
        raw = {str(item["name"]): item.get("value") for item in data}
    else:
        raise UsageError(f"settings file {path}: expected local.settings.json's form "
                         '({"Values": {...}}) or the list `az functionapp config appsettings '
                         "list` prints")
    values = {name: "" if value is None else str(value) for name, value in raw.items()}
    for name in _PATH_SETTINGS:
        value = values.get(name, "").strip()
        if value and not Path(value).is_absolute():
            values[name] = str((path.parent / value).resolve())
    return values


def read_stack_file(path: Path) -> dict[str, str]:
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("Values"), dict):
        raise UsageError(f"{path} is not a local stack file")
    pid = data.get("pid")
    if isinstance(pid, int) and not _running(pid):
        raise UsageError(f"{path} is left from a local stack that is no longer running "
                         f"(process {pid}): start `make run` again, or delete the file")
    values = {str(name): str(value) for name, value in data["Values"].items()}
    if data.get("queue_dir"):
        values["LOCAL_QUEUE_DIR"] = str(data["queue_dir"])
    return values


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
