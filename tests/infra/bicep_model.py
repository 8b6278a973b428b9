"""Literal values of Bicep files, read through pycep-parser (the parser checkov uses).

pycep turns a file into JSON; ``BicepFile`` evaluates the part of the language the templates use
for values the tests compare: parameters (a parameters file's literals over the defaults),
variables, objects, arrays, loops, property access, ``string``/``union``/``concat``, ``==``
and conditionals. Anything known only at deployment (a resource property, a module output, a
function it does not know) evaluates to ``Unresolved``.

pycep writes identifiers and string literals alike (``optinQueue`` and ``'optin-batches'`` both
become plain strings), so a string that names a parameter, variable or loop item of the file is
read as that name; the templates use no literal equal to one of their names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*\Z")
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")


class Unresolved:
    """A value known only at deployment."""

    def __init__(self, node: object) -> None:
        self.node = node

    def __repr__(self) -> str:
        return f"Unresolved({json.dumps(self.node, default=str)[:120]})"


@cache
def _parser() -> BicepParser:
    return BicepParser()


def parse(path: Path) -> dict[str, Any]:
    """pycep's JSON of ``path``; raises whatever pycep raises when it cannot parse it."""
    return dict(_parser().parse(file_path=path))


def parameter_file_values(path: Path) -> dict[str, Any]:
    """The literal values of an ARM parameters file; azd's ``${VAR}`` substitutions are left out
    (their value comes from the azd environment at deployment)."""
    values = {}
    for name, entry in json.loads(path.read_text())["parameters"].items():
        value = entry.get("value")
        if not (isinstance(value, str) and "${" in value):
            values[name] = value
    return values


class BicepFile:
    def __init__(self, path: Path, param_values: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.tree = parse(path)
        self.param_values = dict(param_values or {})
        self._variables: dict[str, Any] = {}

    # ---- declarations ---------------------------------------------------------------------

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.tree.get(name) or {})

    def parameter(self, name: str) -> Any:
        if name in self.param_values:
            return self.param_values[name]
        default = self.section("parameters")[name].get("default")  # None: no default
        return Unresolved(name) if default is None else default

    def variable(self, name: str) -> Any:
        if name not in self._variables:
            self._variables[name] = Unresolved(f"{name} (cycle)")
            self._variables[name] = self.evaluate(self.section("variables")[name]["value"])
        return self._variables[name]

    def resource(self, name: str) -> list[dict[str, Any]]:
        """The resource's configuration, one per loop item (one for a resource without loop)."""
        config = self.section("resources")[name]["config"]
        evaluated = self.evaluate(config)
        return evaluated if isinstance(evaluated, list) else [evaluated]

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.section("resources").items()
                if r["type"] == resource_type}

    def module_params(self, name: str) -> dict[str, Any]:
        params = self.section("modules")[name]["config"]["params"]
        evaluated = self.evaluate(params)
        assert isinstance(evaluated, dict)
        return evaluated

    def module(self, name: str) -> BicepFile:
        """The module's file, its parameters set to what this file passes."""
        path = self.path.parent / self.section("modules")[name]["detail"]["path"]
        return BicepFile(path, self.module_params(name))

    # ---- evaluation -----------------------------------------------------------------------

    def _names(self) -> set[str]:
        return (set(self.section("parameters")) | set(self.section("variables"))
                | set(self.section("resources")) | set(self.section("modules")))

    def _lookup(self, name: str, local: Mapping[str, Any]) -> Any:
        if name in local:
            return local[name]
        if name in self.section("parameters"):
            return self.parameter(name)
        if name in self.section("variables"):
            return self.variable(name)
        return Unresolved(name)  # a resource or module: its properties come at deployment

    def evaluate(self, node: Any, local: Mapping[str, Any] | None = None) -> Any:
        local = local or {}
        if node is None or isinstance(node, bool | int | float):
            return node
        if isinstance(node, str):
            return self._string(node, local)
        if isinstance(node, list):
            return [self.evaluate(item, local) for item in node]
        if "loop_type" in node:
            return self._loop(node, local)
        if set(node) == {"function"}:
            return self._function(node["function"], local)
        if set(node) == {"operator"}:
            return self._operator(node["operator"], local)
        return {_unquote(key): self.evaluate(value, local) for key, value in node.items()}

    def _string(self, text: str, local: Mapping[str, Any]) -> Any:
        if _IDENTIFIER.match(text) and (text in local or text in self._names()):
            return self._lookup(text, local)
        if "${" not in text:
            return text

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            value = (self._path(expression.split("."), local) if _PATH.match(expression)
                     else Unresolved(expression))
            if isinstance(value, Unresolved) or not isinstance(value, str | int):
                raise _CannotInterpolate
            return str(value)

        try:
            return _INTERPOLATION.sub(substitute, text)
        except _CannotInterpolate:
            return Unresolved(text)

    def _path(self, parts: list[Any], local: Mapping[str, Any]) -> Any:
        value = self.evaluate(parts[0], local)
        for part in parts[1:]:
            if isinstance(value, Unresolved):
                return value
            if isinstance(value, dict) and isinstance(part, str) and part in value:
                value = value[part]
            else:
                return Unresolved(parts)
        return value

    def _loop(self, node: dict[str, Any], local: Mapping[str, Any]) -> Any:
        loop = node["loop_type"]
        detail = loop["detail"]
        if node.get("condition") is not None:
            return Unresolved(node)
        if loop["type"] == "array":
            items = self._lookup(detail["array_name"], local)
        elif loop["type"] == "object":
            source = self._lookup(detail["object_name"], local)
            items = (source if isinstance(source, Unresolved)
                     else [{"key": k, "value": v} for k, v in source.items()])
        else:
            return Unresolved(node)
        if isinstance(items, Unresolved):
            return items
        return [self.evaluate(node["config"], {**local, detail["item_name"]: item})
                for item in items]

    def _function(self, function: dict[str, Any], local: Mapping[str, Any]) -> Any:
        args = [self.evaluate(arg, local) for arg in function.get("parameters", {}).values()]
        if any(isinstance(arg, Unresolved) for arg in args):
            return Unresolved(function)
        kind = function["type"]
        if kind == "string" and len(args) == 1 and type(args[0]) in (int, str):
            return str(args[0])  # (ARM writes booleans as True/False: left unresolved)
        if kind == "union" and all(isinstance(arg, dict) for arg in args):
            merged: dict[str, Any] = {}
            for arg in args:
                merged.update(arg)
            return merged
        if kind == "concat" and all(isinstance(arg, list) for arg in args):
            return [item for arg in args for item in arg]
        if kind == "concat" and all(isinstance(arg, str) for arg in args):
            return "".join(args)
        return Unresolved(function)

    def _operator(self, operator: dict[str, Any], local: Mapping[str, Any]) -> Any:
        operands = operator["operands"]
        if operator["type"] == "property_accessor":
            return self._path(_flatten_access(operator), local)
        if operator["type"] in ("equals", "not_equals"):
            left = self.evaluate(operands["operand_1"], local)
            right = self.evaluate(operands["operand_2"], local)
            if not isinstance(left, Unresolved) and not isinstance(right, Unresolved):
                return (left == right) is (operator["type"] == "equals")
        if operator["type"] == "conditional":
            condition = self.evaluate(operands["condition"], local)
            if isinstance(condition, bool):
                branch = "true_value" if condition else "false_value"
                return self.evaluate(operands[branch], local)
        return Unresolved(operator)


class _CannotInterpolate(Exception):
    pass


def _flatten_access(operator: dict[str, Any]) -> list[Any]:
    """``a.b.c`` as pycep nests it (``a`` . (``b`` . ``c``)) -> [a, b, c]."""
    operands = operator["operands"]
    right = operands["operand_2"]
    if isinstance(right, dict) and right.get("operator", {}).get("type") == "property_accessor":
        return [operands["operand_1"], *_flatten_access(right["operator"])]
    return [operands["operand_1"], right]


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def iso_duration_seconds(text: str) -> float:
    """An ISO 8601 duration as Service Bus takes it (days and times), in seconds."""
    match = re.fullmatch(
        r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration of days and time: {text!r}")
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def timespan_seconds(text: str) -> float:
    """A host.json time span ([d.]hh:mm:ss), in seconds."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if not match:
        raise ValueError(f"not a time span: {text!r}")
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
