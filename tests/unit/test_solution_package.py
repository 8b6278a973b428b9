"""The Dataverse solution package (``devtools.solution_package``) built from
``infra/dynamics/solution/``: the zip's layout, the manifest, the web resources it declares and
the ribbon's references between buttons, commands, rules, labels and script libraries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import pytest

from devtools.solution_package import (
    LIBRARY_PREFIX,
    SOURCE,
    VENDORED,
    WEB_RESOURCE_TYPES,
    build,
    find_web_resources,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "infra" / "dynamics" / "schema.json").read_text(encoding="utf-8"))
PREFIX = SCHEMA["publisher"]["prefix"]
ROOT_FILES = ("solution.xml", "customizations.xml", "[Content_Types].xml")
TABLES = ("contact", "lead")
GRID_RIBBONS = ("Mscrm.HomepageGrid", "Mscrm.SubGrid")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("solution") / "solution.zip"
    build(out)
    return out


@pytest.fixture(scope="module")
def entries(package: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(package) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def solution(entries: dict[str, bytes]) -> ET.Element:
    return ET.fromstring(entries["solution.xml"])


@pytest.fixture(scope="module")
def customizations(entries: dict[str, bytes]) -> ET.Element:
    return ET.fromstring(entries["customizations.xml"])


def declared_web_resources(customizations: ET.Element) -> dict[str, ET.Element]:
    return {element.findtext("Name", ""): element
            for element in customizations.findall("WebResources/WebResource")}


def ribbons(customizations: ET.Element) -> dict[str, ET.Element]:
    """The RibbonDiffXml of each entity, by logical (lower-case) name."""
    found: dict[str, ET.Element] = {}
    for entity in customizations.findall("Entities/Entity"):
        ribbon = entity.find("RibbonDiffXml")
        if ribbon is not None:
            found[(entity.findtext("Name") or "").lower()] = ribbon
    return found


def test_the_three_root_files_are_at_the_root_and_well_formed(entries: dict[str, bytes]) -> None:
    for name in ROOT_FILES:
        assert name in entries
        ET.fromstring(entries[name])
    assert all("/" not in name for name in entries if not name.startswith("WebResources/"))
    assert set(entries) - set(ROOT_FILES) == {
        name for name in entries if name.startswith("WebResources/")}


def test_content_types_cover_every_extension_in_the_zip(entries: dict[str, bytes]) -> None:
    types = ET.fromstring(entries["[Content_Types].xml"])
    assert types.tag == "{http://schemas.openxmlformats.org/package/2006/content-types}Types"
    declared = {element.get("Extension") for element in types}
    assert declared == {PurePosixPath(name).suffix.lstrip(".") for name in entries}


def test_the_solution_is_unmanaged_with_the_schema_publisher(solution: ET.Element) -> None:
    manifest = solution.find("SolutionManifest")
    assert manifest is not None
    assert manifest.findtext("UniqueName") == "ecdotdigitalconnector"
    name = manifest.find("LocalizedNames/LocalizedName[@languagecode='1033']")
    assert name is not None and name.get("description") == "dotdigital connector"
    assert manifest.findtext("Version") == "1.0.0.0"
    assert manifest.findtext("Managed") == "0"
    assert manifest.findtext("Publisher/CustomizationPrefix") == PREFIX
    assert manifest.findtext("Publisher/CustomizationOptionValuePrefix") == str(
        SCHEMA["publisher"]["option_value_prefix"])


def test_the_entity_ribbons_are_root_components(solution: ET.Element,
                                                customizations: ET.Element) -> None:
    entities = {component.get("schemaName")
                for component in solution.iter("RootComponent") if component.get("type") == "1"}
    assert entities == set(TABLES) == set(ribbons(customizations))


def test_every_declared_web_resource_is_in_the_zip(entries: dict[str, bytes],
                                                    customizations: ET.Element) -> None:
    declared = declared_web_resources(customizations)
    assert declared
    for name, element in declared.items():
        file_name = element.findtext("FileName", "")
        assert file_name == f"/WebResources/{name}"
        assert file_name.lstrip("/") in entries
        suffix = PurePosixPath(name).suffix.lower()
        assert element.findtext("WebResourceType") == str(WEB_RESOURCE_TYPES[suffix])
        assert element.findtext("IsCustomizable") == "1"
        assert re.fullmatch(r"\{[0-9a-f-]{36}\}", element.findtext("WebResourceId", ""))
        assert name.startswith(f"{PREFIX}_/")


def test_every_web_resource_file_is_declared_and_a_root_component(
        entries: dict[str, bytes], solution: ET.Element, customizations: ET.Element) -> None:
    folder = SOURCE / "WebResources"
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*")
             if path.is_file() and not path.name.startswith(".")}
    assert "ec_/programs/command.js" in files
    # MSAL.js is shipped from its npm package, beside the dialog that loads it.
    assert set(VENDORED) == {"ec_/programs/msal-browser.min.js"}
    for name, path in VENDORED.items():
        assert entries[f"WebResources/{name}"] == path.read_bytes()
    files |= set(VENDORED)
    assert set(declared_web_resources(customizations)) == files
    assert {name.removeprefix("WebResources/") for name in entries
            if name.startswith("WebResources/")} == files
    components = {component.get("schemaName") for component in solution.iter("RootComponent")
                  if component.get("type") == "61"}
    assert components == files
    for name in files - set(VENDORED):
        assert entries[f"WebResources/{name}"] == (folder / name).read_bytes()


def test_every_ribbon_library_is_a_declared_web_resource(customizations: ET.Element) -> None:
    declared = set(declared_web_resources(customizations))
    libraries = [function.get("Library", "")
                 for function in customizations.iter("JavaScriptFunction")]
    assert libraries
    for library in libraries:
        assert library.startswith(LIBRARY_PREFIX)
        assert library.removeprefix(LIBRARY_PREFIX) in declared


def test_web_resources_the_scripts_and_pages_open_are_declared(
        customizations: ET.Element) -> None:
    """The dialog the command script opens, and the files a page loads, are in the package.

    Names under the publisher prefix in scripts (``"ec_/programs/dialog.html"``) and relative
    ``src``/``href`` in pages that resolve under the prefix (``dialog.js`` beside
    ``dialog.html``); references outside it (``../../ClientGlobalContext.js.aspx``) are the
    platform's."""
    declared = set(declared_web_resources(customizations))
    wanted: set[str] = set()
    for name in declared - set(VENDORED):
        text = (SOURCE / "WebResources" / name).read_text(encoding="utf-8", errors="replace")
        if name.endswith(".js"):
            wanted |= set(re.findall(rf"[\"']({PREFIX}_/[A-Za-z0-9_./]+)[\"']", text))
        elif name.endswith((".html", ".htm")):
            for reference in re.findall(r"(?:src|href)\s*=\s*[\"']([^\"'#?]+)", text):
                if re.match(r"^[a-z]+:|^/", reference):
                    continue
                resolved = _resolve(PurePosixPath(name).parent, reference)
                if resolved is not None and resolved.startswith(f"{PREFIX}_/"):
                    wanted.add(resolved)
    assert "ec_/programs/dialog.html" in wanted
    assert sorted(wanted - declared) == []


def _resolve(folder: PurePosixPath, reference: str) -> str | None:
    parts = list(folder.parts)
    for part in reference.split("/"):
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


@pytest.mark.parametrize("table", TABLES)
def test_the_button_is_on_the_form_and_the_grids(customizations: ET.Element, table: str) -> None:
    ribbon = ribbons(customizations)[table]
    locations = {action.get("Location") for action in ribbon.iter("CustomAction")}
    assert f"Mscrm.Form.{table}.MainTab.Actions.Controls._children" in locations
    assert f"Mscrm.HomepageGrid.{table}.MainTab.Actions.Controls._children" in locations
    labels = {label.get("Id"): label.find("Titles/Title[@languagecode='1033']")
              for label in ribbon.iter("LocLabel")}
    titles: dict[str, set[str]] = {}
    for button in ribbon.iter("Button"):
        label = button.get("LabelText", "")
        assert label.startswith("$LocLabels:")
        title = labels[label.removeprefix("$LocLabels:")]
        assert title is not None
        titles.setdefault(str(title.get("description")), set()).add(str(button.get("Id")))
    # Automation Programs on the form and the grids; the engagement timeline on the form.
    assert titles["Automation Programs"] == {
        f"ec.{table}.form.programs.Button", f"ec.{table}.grid.programs.Button",
        f"ec.{table}.subgrid.programs.Button"}
    assert titles["Engagement timeline"] == {f"ec.{table}.form.timeline.Button"}


@pytest.mark.parametrize("table", TABLES)
def test_every_button_command_rule_and_label_is_defined(customizations: ET.Element,
                                                        table: str) -> None:
    ribbon = ribbons(customizations)[table]
    commands = {command.get("Id") for command in ribbon.iter("CommandDefinition")}
    enable_rules = {rule.get("Id") for rule in ribbon.findall("RuleDefinitions/EnableRules/*")}
    display_rules = {rule.get("Id") for rule in ribbon.findall("RuleDefinitions/DisplayRules/*")}
    labels = {label.get("Id") for label in ribbon.iter("LocLabel")}
    buttons = list(ribbon.iter("Button"))
    assert buttons
    for button in buttons:
        assert button.get("Command") in commands
        for attribute in ("LabelText", "ToolTipTitle", "ToolTipDescription", "Alt"):
            value = button.get(attribute, "")
            if value.startswith("$LocLabels:"):
                assert value.removeprefix("$LocLabels:") in labels
    for command in ribbon.iter("CommandDefinition"):
        for reference in command.findall("EnableRules/EnableRule"):
            assert reference.get("Id") in enable_rules
        for reference in command.findall("DisplayRules/DisplayRule"):
            assert reference.get("Id") in display_rules
        assert command.findall("Actions/JavaScriptFunction")


@pytest.mark.parametrize("table", TABLES)
def test_grid_buttons_need_a_selection(customizations: ET.Element, table: str) -> None:
    ribbon = ribbons(customizations)[table]
    commands = {command.get("Id"): command for command in ribbon.iter("CommandDefinition")}
    rules = {rule.get("Id"): rule for rule in ribbon.findall("RuleDefinitions/EnableRules/*")}
    grid_actions = [action for action in ribbon.iter("CustomAction")
                    if (action.get("Location") or "").startswith(GRID_RIBBONS)]
    assert any((action.get("Location") or "").startswith("Mscrm.HomepageGrid")
               for action in grid_actions)
    for action in grid_actions:
        for button in action.iter("Button"):
            command = commands[button.get("Command")]
            counts = [count for reference in command.findall("EnableRules/EnableRule")
                      for count in rules[reference.get("Id")].iter("SelectionCountRule")]
            assert any(int(count.get("Minimum", "0")) >= 1 for count in counts)
            parameters = [parameter.get("Value") for parameter in command.iter("CrmParameter")]
            assert parameters[0] == "SelectedControlSelectedItemIds"
            assert "SelectedEntityTypeName" in parameters


@pytest.mark.parametrize("table", TABLES)
def test_form_buttons_pass_the_form_context(customizations: ET.Element, table: str) -> None:
    ribbon = ribbons(customizations)[table]
    commands = {command.get("Id"): command for command in ribbon.iter("CommandDefinition")}
    for action in ribbon.iter("CustomAction"):
        if (action.get("Location") or "").startswith("Mscrm.Form."):
            for button in action.iter("Button"):
                parameters = [parameter.get("Value")
                              for parameter in commands[button.get("Command")].iter("CrmParameter")]
                assert parameters == ["PrimaryControl"]


def test_ribbon_ids_carry_the_publisher_prefix(customizations: ET.Element) -> None:
    ids = [element.get("Id", "") for ribbon in ribbons(customizations).values()
           for element in ribbon.iter() if element.get("Id") is not None
           and element.tag != "RibbonTemplates"]
    assert ids
    assert [identifier for identifier in ids if not identifier.startswith(f"{PREFIX}.")] == []


def test_two_builds_are_byte_identical(package: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    build(again)
    assert again.read_bytes() == package.read_bytes()
    with zipfile.ZipFile(again) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def _copy_source(tmp_path: Path) -> Path:
    source = tmp_path / "solution"
    shutil.copytree(SOURCE, source)
    return source


def test_the_build_refuses_a_ribbon_calling_a_missing_library(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    path = source / "Other" / "Customizations.xml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "$webresource:ec_/programs/command.js", "$webresource:ec_/programs/missing.js", 1),
        encoding="utf-8")
    with pytest.raises(ValueError, match="missing.js"):
        build(tmp_path / "out.zip", source)


def test_the_build_refuses_a_file_of_no_web_resource_type(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    (source / "WebResources" / "ec_" / "programs" / "notes.md").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="notes.md"):
        find_web_resources(source, PREFIX)


def test_a_new_file_is_declared_without_other_edits(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    (source / "WebResources" / "ec_" / "programs" / "extra.css").write_text(
        "body {}\n", encoding="utf-8")
    built = build(tmp_path / "out.zip", source)
    names = {resource.name: resource.type for resource in built.web_resources}
    assert names["ec_/programs/extra.css"] == 2
    assert b"<Name>ec_/programs/extra.css</Name>" in built.entries["customizations.xml"]


COMMAND_HARNESS = r"""
global.window = global;
const calls = [];
const refreshed = [];
global.Xrm = {Navigation: {
  navigateTo: (page, options) => { calls.push({page, options}); return Promise.resolve(); },
  openAlertDialog: (alert) => { calls.push({alert}); return Promise.resolve(); },
  openErrorDialog: (error) => { calls.push({error}); return Promise.resolve(); },
}};
require(process.argv[1]);
const programs = window.ec.programs;
const form = {data: {
  entity: {getId: () => "{0A6F1E52-1111-4C2B-9D2E-000000000001}", getEntityName: () => "contact"},
  refresh: (save) => { refreshed.push(["form", save]); return Promise.resolve(); },
}};
const grid = {refresh: () => { refreshed.push(["grid"]); }};
(async () => {
  await programs.openFromForm(form);
  await programs.openFromGrid(["{A1}", "{B2}"], grid, "lead");
  await programs.openFromGrid([], grid, "lead");
  process.stdout.write(JSON.stringify({calls, refreshed}));
})();
"""


def test_the_command_script_opens_the_dialog_and_refreshes() -> None:
    # Node.js is part of the project's set-up (make installs Azurite with npm): always here.
    script = SOURCE / "WebResources" / "ec_" / "programs" / "command.js"
    result = subprocess.run(["node", "-e", COMMAND_HARNESS, str(script)], capture_output=True,
                            text=True, timeout=30, check=True)
    seen = json.loads(result.stdout)
    form_call, grid_call, empty_call = seen["calls"]
    options = {"target": 2, "position": 1, "width": {"value": 560, "unit": "px"},
               "height": {"value": 600, "unit": "px"}}
    for call, entity, ids in ((form_call, "contact", ["0a6f1e52-1111-4c2b-9d2e-000000000001"]),
                              (grid_call, "lead", ["a1", "b2"])):
        assert call["page"]["pageType"] == "webresource"
        assert call["page"]["webresourceName"] == "ec_/programs/dialog.html"
        assert json.loads(unquote(call["page"]["data"])) == {"entity": entity, "ids": ids}
        assert {key: call["options"][key] for key in options} == options
    assert "alert" in empty_call
    assert seen["refreshed"] == [["form", False], ["grid"]]
