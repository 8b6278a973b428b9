"""The Dataverse solution package (``devtools.solution_package``) built from
``infra/dynamics/solution/``: the zip's layout, the manifest and its root components, the web
resources it declares, the ribbon's references between buttons, commands, rules, labels and script
libraries, the opt-in type's placements on the standard main forms (form XML diffs) and the views,
checked for the shape Dynamics imports and against the columns ``schema.json`` defines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import pytest

from devtools.solution_package import (
    CONFIG_SCRIPT,
    LIBRARY_PREFIX,
    SOURCE,
    VENDORED,
    WEB_RESOURCE_TYPES,
    Deployment,
    build,
    find_web_resources,
    main,
)
from devtools.solution_package import package as solution_package

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "infra" / "dynamics" / "schema.json").read_text(encoding="utf-8"))
PREFIX = SCHEMA["publisher"]["prefix"]
ROOT_FILES = ("solution.xml", "customizations.xml", "[Content_Types].xml")
TABLES = ("contact", "lead")
GRID_RIBBONS = ("Mscrm.HomepageGrid", "Mscrm.SubGrid")
TABLE_SCHEMAS = {table["logical_name"]: table for table in SCHEMA["tables"]}
SYSTEM_COLUMNS = {column["name"] for column in SCHEMA["system_columns"]}
ALL_TABLES = ("account", "contact", "ec_emailaccount", "ec_emailsuppression", "ec_program",
              "ec_syncschedule", "lead")
GUID = re.compile(r"^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$")
ANY_GUID = re.compile(r"^\{?[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}?$")
PICKLIST_CONTROL = "{3EF39988-22BB-4F0B-BBBE-64B5A3748AEE}"
# Where the opt-in type goes: the standard main form's id, then its tab and section as Dynamics
# names them, and their ids where the sources carry them (taken from exports of the standard
# Contact and Account forms; the Sales Lead form's are not in the sources).
PLACEMENTS = {
    "contact": ("{1fed44d1-ae68-4a41-bd2b-f13acac4acfa}",
                ("DETAILS_TAB", "{fe1c5c3b-d556-4552-a444-4781214a6d63}"),
                ("CONTACT_PREFERENCES", "{42aa148d-17fa-4c73-8213-bd22400b74ea}")),
    "account": ("{8448b78f-8f42-454e-8e2a-f8196b0419af}",
                ("DETAILS_TAB", "{11a42c72-9ded-ea04-253d-2143e731b795}"),
                ("CONTACT_PREFERENCES", "{2787a122-55d5-4c8d-9b21-c8d4ec8cc3fc}")),
    "lead": ("{e3b6ddb7-8df0-4410-ac7b-fd32e5053d38}", ("details_tab", None),
             ("CONTACT METHOD", None)),
}
# The elements of a <savedquery>, in the order Dynamics exports them (the first eleven required).
SAVED_QUERY_ELEMENTS = ("IsCustomizable", "CanBeDeleted", "isquickfindquery", "isprivate",
                        "isdefault", "savedqueryid", "layoutxml", "querytype", "fetchxml",
                        "IntroducedVersion", "LocalizedNames", "Descriptions")
SYSTEM_FORM_ELEMENTS = ("formid", "IntroducedVersion", "FormPresentation", "FormActivationState",
                        "form")
# savedquery querytype: 0 public, 1 advanced find, 2 associated, 4 quick find, 64 lookup.
QUERY_TYPES = {"0", "1", "2", "4", "64"}
FETCH_OPERATORS = {"eq", "ne", "like", "not-like", "null", "not-null", "in", "not-in", "gt", "ge",
                   "lt", "le", "on", "on-or-after", "on-or-before", "last-x-days", "eq-userid"}


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


def entity(customizations: ET.Element, table: str) -> ET.Element:
    """The <Entity> of a table, by logical (lower-case) name."""
    found = [element for element in customizations.findall("Entities/Entity")
             if (element.findtext("Name") or "").lower() == table]
    assert len(found) == 1, table
    return found[0]


def views(customizations: ET.Element) -> dict[str, list[ET.Element]]:
    """The <savedquery> elements of each table, by logical name."""
    return {(element.findtext("Name") or "").lower():
            element.findall("SavedQueries/savedqueries/savedquery")
            for element in customizations.findall("Entities/Entity")}


def systemforms(customizations: ET.Element) -> dict[str, list[ET.Element]]:
    """The <systemform> elements of each table, by logical name."""
    return {(element.findtext("Name") or "").lower(): element.findall("FormXml/forms/systemform")
            for element in customizations.findall("Entities/Entity")}


def columns(table: str) -> set[str]:
    """The columns schema.json defines for a table, its system columns included."""
    return {column["name"] for column in TABLE_SCHEMAS[table]["columns"]} | SYSTEM_COLUMNS


def view_name(view: ET.Element) -> str:
    name = view.find("LocalizedNames/LocalizedName[@languagecode='1033']")
    assert name is not None, view.findtext("savedqueryid")
    return name.get("description", "")


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


def test_every_table_is_a_shell_root_component(solution: ET.Element,
                                               customizations: ET.Element) -> None:
    """The tables customizations.xml declares, and only they, are root components as shells
    (behavior 2): the solution carries their ribbon, forms and views, never their metadata."""
    entities = {component.get("schemaName"): component.get("behavior")
                for component in solution.iter("RootComponent") if component.get("type") == "1"}
    declared = {(entity.findtext("Name") or "").lower()
                for entity in customizations.findall("Entities/Entity")}
    assert set(entities) == declared == set(ALL_TABLES)
    assert set(entities.values()) == {"2"}
    assert set(ribbons(customizations)) == set(TABLES)


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
    assert set(VENDORED) == {"ec_/programs/msal_browser.min.js"}
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


def test_the_pages_load_msal_from_the_vendored_web_resource() -> None:
    """The dialog and the timeline load MSAL.js, by default, from the web resource the builder
    ships it as (relative to the page, which sits beside its script)."""
    for name in ("ec_/programs/dialog.js", "ec_/timeline/timeline.js"):
        text = (SOURCE / "WebResources" / name).read_text(encoding="utf-8")
        defaults = re.findall(r'msalScript \|\| "([^"]+)"', text)
        assert defaults, name
        assert {_resolve(PurePosixPath(name).parent, default) for default in defaults} == set(
            VENDORED), name


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


# --- the package as a whole --------------------------------------------------------------------
def test_every_xml_part_is_well_formed(entries: dict[str, bytes]) -> None:
    xml_parts = [name for name in entries if name.endswith(".xml")]
    assert {"solution.xml", "customizations.xml", "[Content_Types].xml"} <= set(xml_parts)
    for name in xml_parts:
        assert entries[name].startswith(b'<?xml version="1.0" encoding="utf-8"?>'), name
        ET.fromstring(entries[name])
    # The sources too, the form and view files included: a broken one is caught here, not first
    # by the builder.
    for path in sorted(SOURCE.rglob("*.xml")):
        ET.parse(path)


def test_the_manifest_and_customizations_are_import_export_documents(
        solution: ET.Element, customizations: ET.Element) -> None:
    assert solution.tag == customizations.tag == "ImportExportXml"
    assert solution.get("SolutionPackageVersion") and solution.get("languagecode") == "1033"
    manifest = solution.find("SolutionManifest")
    assert manifest is not None
    assert [child.tag for child in manifest] == [
        "UniqueName", "LocalizedNames", "Descriptions", "Version", "Managed", "Publisher",
        "RootComponents", "MissingDependencies"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", manifest.findtext("Version", ""))
    assert customizations.get("OrganizationVersion")
    assert customizations.findtext("Languages/Language") == "1033"
    for component in manifest.iter("RootComponent"):
        # A root component names its component by schema name or by id, never both.
        assert (component.get("schemaName") is None) != (component.get("id") is None)
        assert component.get("behavior") in {"0", "2"}


@pytest.mark.parametrize("table", ALL_TABLES)
def test_every_table_is_declared_as_an_unmodified_shell(customizations: ET.Element,
                                                        table: str) -> None:
    """The solution adds to tables that exist (standard ones, and the ec_ ones provisioning
    creates from schema.json): it declares each with its schema.json display name and no
    attribute, so an import never changes the table itself."""
    element = entity(customizations, table)
    name = element.find("Name")
    assert name is not None and name.get("LocalizedName") == TABLE_SCHEMAS[table]["display_name"]
    info = element.find("EntityInfo/entity")
    assert info is not None and info.get("Name") == name.text and info.get("unmodified") == "1"
    assert [child.tag for child in info] == ["attributes"]
    attributes = info.find("attributes")
    assert attributes is not None and len(attributes) == 0
    # The parts of an <Entity> come in the order Dynamics exports them.
    order = ["Name", "EntityInfo", "FormXml", "SavedQueries", "RibbonDiffXml"]
    tags = [child.tag for child in element]
    assert tags == [tag for tag in order if tag in tags]


# --- the opt-in type on the standard main forms ------------------------------------------------
def _placement(customizations: ET.Element, table: str) -> tuple[ET.Element, ET.Element]:
    """The standard main form of a table and the cell the solution adds to it."""
    form_id, (tab_name, _), (section_name, _) = PLACEMENTS[table]
    forms = [form for form in entity(customizations, table).findall(
        "FormXml/forms[@type='main']/systemform") if form.findtext("formid") == form_id]
    assert len(forms) == 1, table
    sections = forms[0].findall(f"form/tabs/tab[@name='{tab_name}']/columns/column/sections/"
                                f"section[@name='{section_name}']")
    assert len(sections) == 1, table
    cells = sections[0].findall("rows/row/cell")
    assert len(cells) == 1, table
    return forms[0], cells[0]


@pytest.mark.parametrize("table", PLACEMENTS)
def test_the_opt_in_type_is_added_to_the_standard_main_form(customizations: ET.Element,
                                                           table: str) -> None:
    form, cell = _placement(customizations, table)
    assert cell.get("solutionaction") == "Added"
    controls = cell.findall("control")
    assert len(controls) == 1
    control = controls[0]
    assert control.get("datafieldname") == control.get("id") == "ec_optintype"
    assert "ec_optintype" in columns(table)
    column = next(column for column in TABLE_SCHEMAS[table]["columns"]
                  if column["name"] == "ec_optintype")
    # A choice column shows in the option set control; read-only: the connector writes it.
    assert column["type"] == "choice"
    assert (control.get("classid") or "").upper() == PICKLIST_CONTROL
    assert control.get("disabled") == "true"
    label = cell.find("labels/label[@languagecode='1033']")
    assert label is not None
    assert label.get("description") == SCHEMA["choices"][column["choice"]]["display_name"]
    # A diff: the one added cell is the only change; nothing of the form is modified or removed.
    actions = [(element.tag, element.get("solutionaction")) for element in form.iter()
               if element.get("solutionaction") is not None]
    assert actions == [("cell", "Added")]


@pytest.mark.parametrize("table", PLACEMENTS)
def test_the_placement_names_the_standard_forms_tab_and_section(customizations: ET.Element,
                                                                table: str) -> None:
    form_id, (tab_name, tab_id), (section_name, section_id) = PLACEMENTS[table]
    form, _ = _placement(customizations, table)
    tab = form.find(f"form/tabs/tab[@name='{tab_name}']")
    section = form.find(f".//section[@name='{section_name}']")
    assert tab is not None and section is not None
    assert tab.get("id") == tab_id
    assert section.get("id") == section_id
    # The standard forms' containers are the system's, not the solution's.
    assert tab.get("IsUserDefined") == section.get("IsUserDefined") == "0"


def test_only_the_three_standard_main_forms_are_in_the_solution(
        solution: ET.Element, customizations: ET.Element) -> None:
    forms = {table: [form.findtext("formid") for form in found]
             for table, found in systemforms(customizations).items() if found}
    assert forms == {table: [placement[0]] for table, placement in PLACEMENTS.items()}
    components = {component.get("id") for component in solution.iter("RootComponent")
                  if component.get("type") == "60"}
    assert components == {placement[0] for placement in PLACEMENTS.values()}


def test_form_xml_has_the_shape_dynamics_imports(customizations: ET.Element) -> None:
    """<systemform>: formid, IntroducedVersion, FormPresentation, FormActivationState, then
    <form> with tabs > tab > columns > column > sections > section > rows > row > cell >
    (labels, control); each cell and control identified; ids GUIDs; labels with a language."""
    children = {"form": ["tabs"], "tabs": ["tab"], "tab": ["labels", "columns"],
                "columns": ["column"], "column": ["sections"], "sections": ["section"],
                "section": ["labels", "rows"], "rows": ["row"], "row": ["cell"],
                "cell": ["labels", "control"], "labels": ["label"], "control": ["parameters"]}
    forms = [form for found in systemforms(customizations).values() for form in found]
    assert forms
    for form in forms:
        assert [child.tag for child in form] == list(SYSTEM_FORM_ELEMENTS)
        assert GUID.match(form.findtext("formid", ""))
        assert form.findtext("FormPresentation") == form.findtext("FormActivationState") == "1"
        layout = form.find("form")
        assert layout is not None
        for parent in layout.iter():
            if parent.tag in children:
                assert {child.tag for child in parent} <= set(children[parent.tag]), parent.tag
        for element in layout.iter():
            assert element.get("solutionaction") in {None, "Added", "Modified", "Removed"}
            if element.tag in ("tab", "section"):
                assert element.get("name")
                assert element.get("id") is None or GUID.match(element.get("id", ""))
        for cell in layout.iter("cell"):
            assert GUID.match(cell.get("id", ""))
        for label in layout.iter("label"):
            assert label.get("description") and label.get("languagecode") == "1033"
        for control in layout.iter("control"):
            assert control.get("id") and ANY_GUID.match(control.get("classid", ""))
    cells = [cell.get("id") for form in forms for cell in form.iter("cell")]
    assert len(cells) == len(set(cells))


def test_every_form_field_is_a_schema_column(customizations: ET.Element) -> None:
    for table, forms in systemforms(customizations).items():
        for form in forms:
            for control in form.iter("control"):
                field = control.get("datafieldname")
                assert field is None or field in columns(table), (table, field)


# --- the views ---------------------------------------------------------------------------------
def _all_views(customizations: ET.Element) -> list[tuple[str, ET.Element]]:
    return [(table, view) for table, found in views(customizations).items() for view in found]


def test_the_email_suppression_views(customizations: ET.Element) -> None:
    by_name = {view_name(view): view for view in views(customizations)["ec_emailsuppression"]}
    assert set(by_name) == {"Active Email Suppressions", "Inactive Email Suppressions",
                            "Resubscribe Requested", "Quick Find Active Email Suppressions"}

    def cells(name: str) -> list[str]:
        return [cell.get("name", "") for cell in by_name[name].iter("cell")]

    def conditions(name: str) -> set[tuple[str | None, str | None, str | None]]:
        entity_element = by_name[name].find("fetchxml/fetch/entity")
        assert entity_element is not None
        return {(condition.get("attribute"), condition.get("operator"), condition.get("value"))
                for condition in entity_element.findall("filter[@type='and']/condition")}

    assert cells("Active Email Suppressions") == [
        "ec_emailaddress", "ec_reason", "ec_emailaccountid", "ec_suppressedon", "ec_origin",
        "ec_requestresubscribe", "statuscode"]
    assert conditions("Active Email Suppressions") == {("statecode", "eq", "0")}
    assert "ec_resubscribedon" in cells("Inactive Email Suppressions")
    assert conditions("Inactive Email Suppressions") == {("statecode", "eq", "1")}
    assert {"ec_resubscriptionrequestedon", "ec_resubscriptionstatus"} <= set(
        cells("Resubscribe Requested"))
    assert conditions("Resubscribe Requested") == {("statecode", "eq", "0"),
                                                   ("ec_requestresubscribe", "eq", "1")}
    # The default public view is the active one; the quick find view is the only one of its kind.
    defaults = [name for name, view in by_name.items()
                if view.findtext("isdefault") == "1" and view.findtext("querytype") == "0"]
    assert defaults == ["Active Email Suppressions"]


@pytest.mark.parametrize("table", ["ec_emailaccount", "ec_syncschedule", "ec_program"])
def test_each_connector_table_has_a_view(customizations: ET.Element, table: str) -> None:
    found = views(customizations)[table]
    assert len(found) == 1
    assert found[0].findtext("querytype") == "0" and found[0].findtext("isdefault") == "0"


def test_every_view_names_only_schema_columns(customizations: ET.Element) -> None:
    """The grid (layoutxml) and the query (fetchxml) of every view name columns schema.json
    defines for the view's table: cells, the row key, the jump column, attributes, sort orders
    and filter conditions."""
    checked = 0
    for table, view in _all_views(customizations):
        known = columns(table)
        grid = view.find("layoutxml/grid")
        assert grid is not None
        named = {grid.get("jump", "")}
        named |= {row.get("id", "") for row in grid.iter("row")}
        named |= {cell.get("name", "") for cell in grid.iter("cell")}
        fetch = view.find("fetchxml/fetch")
        assert fetch is not None
        named |= {attribute.get("name", "") for attribute in fetch.iter("attribute")}
        named |= {element.get("attribute", "") for element in fetch.iter()
                  if element.tag in ("order", "condition")}
        assert sorted(named - known) == [], (table, view_name(view))
        checked += len(named)
    assert checked


def test_every_view_has_the_shape_dynamics_imports(customizations: ET.Element) -> None:
    for table, view in _all_views(customizations):
        where = (table, view_name(view))
        tags = [child.tag for child in view]
        assert tags == [tag for tag in SAVED_QUERY_ELEMENTS if tag in tags], where
        assert set(SAVED_QUERY_ELEMENTS[:11]) <= set(tags), where
        for flag in ("IsCustomizable", "CanBeDeleted", "isquickfindquery", "isprivate",
                     "isdefault"):
            assert view.findtext(flag) in {"0", "1"}, where
        assert view.findtext("isprivate") == "0", where
        assert view.findtext("querytype") in QUERY_TYPES, where
        assert (view.findtext("isquickfindquery") == "1") == (view.findtext("querytype") == "4")
        assert view_name(view), where
        # layoutxml: one grid of one result row keyed by the primary key, cells with widths.
        layout = view.find("layoutxml")
        assert layout is not None and [child.tag for child in layout] == ["grid"], where
        grid = layout[0]
        assert grid.get("name") == "resultset" and grid.get("select") == "1", where
        assert grid.get("jump") == TABLE_SCHEMAS[table]["primary_name"], where
        assert [child.tag for child in grid] == ["row"], where
        row = grid[0]
        assert row.get("name") == "result", where
        assert row.get("id") == TABLE_SCHEMAS[table]["primary_key"], where
        cells = list(row)
        assert cells and {cell.tag for cell in cells} == {"cell"}, where
        assert all(cell.get("name") and cell.get("width", "").isdigit() for cell in cells)
        assert len({cell.get("name") for cell in cells}) == len(cells), where
        # fetchxml: a query of this table reading the key and every column the grid shows.
        fetch = view.find("fetchxml/fetch")
        assert fetch is not None, where
        assert fetch.get("version") == "1.0" and fetch.get("mapping") == "logical", where
        entities = fetch.findall("entity")
        assert len(entities) == 1 and entities[0].get("name") == table, where
        fetched = {attribute.get("name") for attribute in entities[0].findall("attribute")}
        assert TABLE_SCHEMAS[table]["primary_key"] in fetched, where
        assert {cell.get("name") for cell in cells} <= fetched, where
        for order in entities[0].findall("order"):
            assert order.get("descending") in {"true", "false"}, where
        for element in entities[0].iter():
            if element.tag == "filter":
                assert element.get("type") in {"and", "or"}, where
            if element.tag == "condition":
                assert element.get("operator") in FETCH_OPERATORS, where
        assert entities[0].find(".//link-entity") is None, where


def test_view_conditions_use_values_the_columns_allow(customizations: ET.Element) -> None:
    for table, view in _all_views(customizations):
        definitions = {column["name"]: column for column in TABLE_SCHEMAS[table]["columns"]}
        for condition in view.iter("condition"):
            column = definitions[condition.get("attribute", "")]
            value = condition.get("value")
            if condition.get("operator") != "eq":
                continue
            if column["type"] in ("state", "status"):
                assert int(value or "") in {option["value"] for option in column["options"]}
            elif column["type"] == "choice":
                options = SCHEMA["choices"][column["choice"]]["options"]
                assert int(value or "") in {option["value"] for option in options}
            elif column["type"] == "bool":
                assert value in {"0", "1"}


def test_the_quick_find_view_searches_the_email_address(customizations: ET.Element) -> None:
    for table, found in views(customizations).items():
        assert len([view for view in found if view.findtext("querytype") == "4"]) <= 1, table
    quick = [view for view in views(customizations)["ec_emailsuppression"]
             if view.findtext("querytype") == "4"]
    assert len(quick) == 1
    view = quick[0]
    assert view.findtext("isquickfindquery") == "1" and view.findtext("isdefault") == "1"
    searched = view.findall("fetchxml/fetch/entity/filter[@isquickfindfields='1']")
    assert len(searched) == 1 and searched[0].get("type") == "or"
    conditions = [(condition.get("attribute"), condition.get("operator"), condition.get("value"))
                  for condition in searched[0]]
    assert conditions == [("ec_emailaddress", "like", "{0}")]
    string_columns = {column["name"] for column in TABLE_SCHEMAS["ec_emailsuppression"]["columns"]
                      if column["type"] in ("string", "memo")}
    assert {attribute for attribute, _, _ in conditions} <= string_columns


def test_view_ids_are_stable_guids_written_in_the_sources(
        solution: ET.Element, customizations: ET.Element) -> None:
    """A view's id is written in its source file (named by it), so every build, and every
    import, updates the same view rather than adding one."""
    ids = [view.findtext("savedqueryid", "") for _, view in _all_views(customizations)]
    assert ids and all(GUID.match(view_id) for view_id in ids)
    assert len(ids) == len(set(ids))
    sources = {path.stem: path for path in (SOURCE / "Entities").glob("*/SavedQueries/*.xml")}
    assert set(sources) == set(ids)
    for table, view in _all_views(customizations):
        path = sources[view.findtext("savedqueryid", "")]
        assert path.parent.parent.name.lower() == table
    components = {component.get("id") for component in solution.iter("RootComponent")
                  if component.get("type") == "26"}
    assert components == set(ids)
    names = [(table, view_name(view)) for table, view in _all_views(customizations)]
    assert len(names) == len(set(names))


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


def test_a_build_from_a_copy_of_the_sources_is_byte_identical(package: Path,
                                                              tmp_path: Path) -> None:
    """Nothing of where the sources are, or when they were built, ends up in the zip."""
    copy = tmp_path / "copy.zip"
    build(copy, _copy_source(tmp_path))
    assert copy.read_bytes() == package.read_bytes()


ACTIVE_VIEW = "{2d17b58e-e4fb-5abd-8a70-058dfb416ed1}.xml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _active_view(source: Path) -> Path:
    return source / "Entities" / "ec_emailsuppression" / "SavedQueries" / ACTIVE_VIEW


def _account_main_form(source: Path) -> Path:
    return next((source / "Entities" / "Account" / "FormXml" / "main").glob("*.xml"))


def _assert_build_refuses_edit(tmp_path: Path, file: Callable[[Path], Path], old: str, new: str,
                               match: str) -> None:
    """A build of the sources with ``old`` replaced by ``new`` in ``file`` raises ``match``."""
    source = _copy_source(tmp_path)
    _edit(file(source), old, new)
    with pytest.raises(ValueError, match=match):
        build(tmp_path / "out.zip", source)


def test_the_build_refuses_a_view_naming_a_column_the_schema_lacks(tmp_path: Path) -> None:
    _assert_build_refuses_edit(tmp_path, _active_view, '<attribute name="ec_origin" />',
                               '<attribute name="ec_originx" />', "no column ec_originx")


def test_the_build_refuses_a_grid_column_the_query_does_not_read(tmp_path: Path) -> None:
    _assert_build_refuses_edit(tmp_path, _active_view, '          <attribute name="ec_origin" />\n',
                               "", "shows ec_origin, which the query does not read")


def test_the_build_refuses_a_form_field_the_schema_lacks(tmp_path: Path) -> None:
    _assert_build_refuses_edit(tmp_path, _account_main_form, 'datafieldname="ec_optintype"',
                               'datafieldname="ec_optin"', "no column ec_optin")


def test_the_build_refuses_a_view_of_an_undeclared_table(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    folder = source / "Entities" / "ec_emailsuppression"
    folder.rename(folder.with_name("Annotation"))
    with pytest.raises(ValueError, match="declares no table named Annotation"):
        build(tmp_path / "out.zip", source)


def test_the_build_refuses_a_file_not_named_by_its_id(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    view = _active_view(source)
    view.rename(view.with_name("active.xml"))
    with pytest.raises(ValueError, match="names the file"):
        build(tmp_path / "out.zip", source)


def test_the_build_refuses_a_web_resource_name_dataverse_refuses(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    (source / "WebResources" / "ec_" / "programs" / "extra-style.css").write_text(
        "body {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="extra-style.css"):
        find_web_resources(source, PREFIX)


def test_a_new_view_is_declared_without_other_edits(tmp_path: Path) -> None:
    source = _copy_source(tmp_path)
    folder = source / "Entities" / "ec_emailsuppression" / "SavedQueries"
    new_id = "{00000000-0000-4000-8000-000000000001}"
    text = (folder / ACTIVE_VIEW).read_text(encoding="utf-8")
    text = text.replace("{2d17b58e-e4fb-5abd-8a70-058dfb416ed1}", new_id)
    text = text.replace("Active Email Suppressions", "All Email Suppressions")
    (folder / f"{new_id}.xml").write_text(text, encoding="utf-8")
    built = build(tmp_path / "out.zip", source)
    assert new_id in {view.id for view in built.views}
    assert f'<RootComponent type="26" id="{new_id}" behavior="0" />'.encode() in built.entries[
        "solution.xml"]


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


# --- deployment values in config.js ----------------------------------------------------------
TARGET = Deployment(api_base_url="https://ec-conn.azurewebsites.net/api/",
                    client_id="11111111-2222-3333-4444-555555555555",
                    tenant_id="3f9a2c4e-7b1d-4e8a-9c5f-2d6b8e1a4c70",
                    scope="api://22222222-3333-4444-5555-666666666666/user_impersonation")


def test_a_deployment_fills_config_js_and_changes_nothing_else() -> None:
    plain, deployed = solution_package().entries, solution_package(deployment=TARGET).entries
    config = f"WebResources/{CONFIG_SCRIPT}"
    assert {name for name in plain if plain[name] != deployed[name]} == {config}
    text = deployed[config].decode()
    assert '"https://ec-conn.azurewebsites.net/api"' in text
    assert '"https://login.microsoftonline.com/3f9a2c4e-7b1d-4e8a-9c5f-2d6b8e1a4c70"' in text
    assert '"api://22222222-3333-4444-5555-666666666666/user_impersonation"' in text
    assert "<" not in text.split("window.ecConnectorConfig = {")[1]  # no placeholder left


@pytest.mark.parametrize("client_id", ["", 'x"; alert(1); "', "<client id>"])
def test_a_value_that_would_break_the_script_is_refused(client_id: str) -> None:
    with pytest.raises(ValueError, match="cannot stand for"):
        solution_package(deployment=Deployment(TARGET.api_base_url, client_id, TARGET.tenant_id,
                                      TARGET.scope))


@pytest.mark.parametrize("arguments", [
    ["--api-url", "https://ec-conn.azurewebsites.net/api"],
    ["--api-url", "http://ec-conn.azurewebsites.net/api", "--client-id", "c", "--tenant-id", "t",
     "--scope", "s"],
])
def test_the_command_refuses_partial_or_plain_http_deployment_values(
    arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--out", str(tmp_path / "s.zip"), *arguments])
    assert exited.value.code == 2 and not (tmp_path / "s.zip").exists()
    assert "--api-url" in capsys.readouterr().err
