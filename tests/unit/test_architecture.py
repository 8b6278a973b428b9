"""The layering the README promises, checked on the source (house style §3.2).

- ``domain`` imports only the standard library;
- ``services`` import ``domain``, ``errors``, ``config`` and each other, never adapters or Azure;
- only the composition root (``bootstrap``) and adapters import adapters;
- only ``entrypoints`` import ``azure.functions``;
- nothing in the deployed package imports the dev host, dev tools, tests or benchmarks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
DEV_ONLY = ("devhost", "devtools", "tests", "bench", "emulators", "provisioning", "ops")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((SHARED / folder).rglob("*.py")) if folder else sorted(SHARED.rglob("*.py"))


def label(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", modules("domain"), ids=label)
def test_domain_imports_only_the_standard_library(path: Path) -> None:
    outside = {name for name in imports_of(path)
               if name.split(".")[0] not in sys.stdlib_module_names
               and not name.startswith(("shared.domain", "__future__"))}
    assert outside == set()


@pytest.mark.parametrize("path", modules("services"), ids=label)
def test_services_never_import_adapters_entrypoints_or_azure(path: Path) -> None:
    bad = {name for name in imports_of(path)
           if name.startswith(("shared.adapters", "shared.entrypoints", "shared.bootstrap",
                               "azure", "requests", "msal"))}
    assert bad == set()


@pytest.mark.parametrize("path", modules(""), ids=label)
def test_only_the_composition_root_and_adapters_import_adapters(path: Path) -> None:
    if path.name == "bootstrap.py" or "adapters" in path.relative_to(SHARED).parts:
        return
    assert {name for name in imports_of(path) if name.startswith("shared.adapters")} == set()


@pytest.mark.parametrize("path", modules(""), ids=label)
def test_only_entrypoints_import_azure_functions(path: Path) -> None:
    if "entrypoints" in path.relative_to(SHARED).parts:
        return
    assert {name for name in imports_of(path) if name.startswith("azure.functions")} == set()


@pytest.mark.parametrize("path", [*modules(""), ROOT / "function_app.py"], ids=label)
def test_no_deployed_module_imports_development_code(path: Path) -> None:
    assert {name for name in imports_of(path) if name.split(".")[0] in DEV_ONLY} == set()


def test_function_app_only_registers_blueprints() -> None:
    source = (ROOT / "function_app.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert not any(isinstance(node, ast.FunctionDef) for node in ast.walk(tree))
    assert len(source.splitlines()) <= 25
