"""Builds the unmanaged Dataverse solution ``ecdotdigitalconnector`` from its sources.

The sources are in ``infra/dynamics/solution/``:

- ``Other/Solution.xml``: the manifest (unique name, version, publisher ``ec``);
- ``Other/Customizations.xml``: every table the solution touches, declared as a shell (its
  metadata unmodified: provisioning creates the ``ec_`` tables and the ``ec_optintype`` column),
  and the ribbon (``RibbonDiffXml``) of ``contact`` and ``lead``;
- ``Entities/<Name>/FormXml/<type>/{formid}.xml``: a form of the table whose ``<Name>`` in
  ``Customizations.xml`` is ``<Name>`` (one ``<systemform>`` under ``<forms>``; the placements of
  the opt-in type are form XML diffs of the standard main forms);
- ``Entities/<Name>/SavedQueries/{savedqueryid}.xml``: a view of that table (one
  ``<savedquery>`` under ``<savedqueries>``);
- ``WebResources/``: one file per web resource, its path below the folder being its name
  (``WebResources/ec_/programs/command.js`` is the web resource ``ec_/programs/command.js``).

The builder puts each table's forms and views into its ``<Entity>`` in ``customizations.xml``,
declares every web resource there (``<WebResources>``), and writes the root components of
``solution.xml``: the tables as shells (type 1, behavior 2), the forms (type 60), the views
(type 26) and the web resources (type 61). Adding a file needs no other edit. It refuses a
form or view that names a column ``infra/dynamics/schema.json`` does not define, a view whose
grid shows a column its query does not read, and a ribbon calling a script the folder lacks.

The zip is deterministic: fixed timestamps and attributes, entries in name order, web resource
ids derived from their names, form and view ids written in the sources, so two builds of the same
sources are byte-identical.

    python -m devtools.solution_package [--out PATH] [--source DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "infra" / "dynamics" / "solution"
SCHEMA = ROOT / "infra" / "dynamics" / "schema.json"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
OCTET_STREAM = "application/octet-stream"

# Solution component types (the solutioncomponent table's componenttype choice).
ENTITY_COMPONENT = "1"
VIEW_COMPONENT = "26"
FORM_COMPONENT = "60"
WEB_RESOURCE_COMPONENT = "61"
GENERATED_COMPONENTS = {ENTITY_COMPONENT, VIEW_COMPONENT, FORM_COMPONENT, WEB_RESOURCE_COMPONENT}
# Root component behaviors: 0 the whole component, 2 a table as a shell (no metadata).
WHOLE = "0"
SHELL = "2"
FORM_TYPES = ("main", "quickCreate", "quick", "card")

# WebResourceType by file extension (the webresource table's webresourcetype choice).
WEB_RESOURCE_TYPES: dict[str, int] = {
    ".html": 1, ".htm": 1, ".css": 2, ".js": 3, ".xml": 4, ".png": 5, ".jpg": 6, ".jpeg": 6,
    ".gif": 7, ".xap": 8, ".xsl": 9, ".xslt": 9, ".ico": 10, ".svg": 11, ".resx": 12,
}
# Web resource names (Dataverse's rule): letters, digits, underscores and periods, in parts
# separated by single slashes; no hyphens. They sit under the publisher prefix.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]*(?:/[A-Za-z0-9_.]+)*$")
# Form and view ids: a GUID in braces, lower case, as the files are named.
GUID_PATTERN = re.compile(r"^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$")
# Web resource ids are derived from their names, so a rebuild updates rather than duplicates.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ecdotdigitalconnector:webresource")
# The earliest time a zip can hold: no build date ends up in the package.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
LIBRARY_PREFIX = "$webresource:"

ET.register_namespace("xsi", XSI)


@dataclass(frozen=True)
class WebResource:
    """One file under ``WebResources/``."""

    name: str
    path: Path
    type: int

    @property
    def file_name(self) -> str:
        return f"/WebResources/{self.name}"

    @property
    def archive_name(self) -> str:
        return self.file_name.lstrip("/")

    @property
    def id(self) -> str:
        return "{" + str(uuid.uuid5(ID_NAMESPACE, self.name)) + "}"


@dataclass(frozen=True)
class Form:
    """One file under ``Entities/<Name>/FormXml/<type>/``: a ``<systemform>``."""

    entity: str
    type: str
    id: str
    element: ET.Element
    path: Path

    def column_problems(self, columns: set[str]) -> Iterable[str]:
        """The fields bound to a column not among the table's ``columns``."""
        fields = [control.get("datafieldname") for control in self.element.iter("control")]
        yield from (f"no column {field}" for field in fields
                    if field is not None and field not in columns)


@dataclass(frozen=True)
class View:
    """One file under ``Entities/<Name>/SavedQueries/``: a ``<savedquery>``."""

    entity: str
    id: str
    element: ET.Element
    path: Path

    def column_problems(self, columns: set[str]) -> Iterable[str]:
        """Columns the query (its attributes, order, conditions) or the grid names that are not
        among the table's ``columns``, and grid cells the query does not read."""
        table = self.entity.lower()
        fetch_entity = self.element.find("fetchxml/fetch/entity")
        if fetch_entity is None or fetch_entity.get("name") != table:
            yield f"its query is not of {table}"
            return
        if fetch_entity.find(".//link-entity") is not None:
            yield "it joins another table (link-entity), which this check does not follow"
        fetched = {attribute.get("name", "") for attribute in fetch_entity.iter("attribute")}
        named = fetched | {element.get("attribute", "") for element in fetch_entity.iter()
                           if element.tag in ("order", "condition")}
        cells = [cell.get("name", "") for cell in self.element.iter("cell")]
        keys = {row.get("id", "") for row in self.element.iter("row")}
        keys |= {grid.get("jump", "") for grid in self.element.iter("grid")}
        yield from (f"no column {name}" for name in sorted((named | set(cells) | keys) - columns))
        yield from (f"the grid shows {name}, which the query does not read"
                    for name in sorted(set(cells) - fetched))


@dataclass(frozen=True)
class Package:
    """What goes into the zip: its entries by name, and the components declared."""

    entries: dict[str, bytes]
    web_resources: tuple[WebResource, ...]
    tables: tuple[str, ...]
    forms: tuple[Form, ...]
    views: tuple[View, ...]


# Web resources that come from a package rather than from the sources: MSAL.js, which the dialog
# and the timeline load to get the CRM user's token in Dynamics (npm, pinned in package.json).
# Named with an underscore: Dataverse refuses hyphens in web resource names.
VENDORED = {
    "ec_/programs/msal_browser.min.js":
        ROOT / "node_modules" / "@azure" / "msal-browser" / "lib" / "msal-browser.min.js",
}


def _check_name(name: str, prefix: str) -> None:
    if not NAME_PATTERN.match(name) or not name.startswith(f"{prefix}_/"):
        raise ValueError(f"{name}: a web resource name is {prefix}_/..., letters, digits, "
                         "underscores and periods in parts separated by single slashes")


def find_web_resources(source: Path, prefix: str) -> tuple[WebResource, ...]:
    """Every file under ``source/WebResources`` (hidden files skipped) and the vendored ones,
    in name order."""
    folder = source / "WebResources"
    found: list[WebResource] = []
    for name, path in VENDORED.items():
        if not path.is_file():
            raise ValueError(f"{name}: {path.relative_to(ROOT)} is missing (run npm ci)")
        _check_name(name, prefix)
        found.append(WebResource(name=name, path=path, type=WEB_RESOURCE_TYPES[".js"]))
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        name = relative.as_posix()
        kind = WEB_RESOURCE_TYPES.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"{name}: no web resource type for {path.suffix or 'no extension'}")
        _check_name(name, prefix)
        found.append(WebResource(name=name, path=path, type=kind))
    return tuple(sorted(found, key=lambda resource: resource.name))


def _single(path: Path, root_tag: str, tag: str, folder: Path) -> ET.Element:
    """The one ``tag`` element under a ``root_tag`` root in ``path``."""
    root = ET.parse(path).getroot()
    if root.tag != root_tag or [child.tag for child in root] != [tag]:
        raise ValueError(f"{path.relative_to(folder).as_posix()}: one <{tag}> under "
                         f"<{root_tag}> expected")
    return root[0]


def _component_files(folder: Path) -> list[tuple[tuple[str, ...], Path]]:
    """The files under ``Entities/`` (hidden ones skipped), by their path parts."""
    found = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        parts = path.relative_to(folder).parts
        if path.is_file() and not any(part.startswith(".") for part in parts):
            found.append((parts, path))
    return found


def find_components(source: Path) -> tuple[tuple[Form, ...], tuple[View, ...]]:
    """The forms and views under ``source/Entities``, each file named by the component's id."""
    folder = source / "Entities"
    forms: list[Form] = []
    views: list[View] = []
    for parts, path in _component_files(folder):
        relative = "/".join(parts)
        if len(parts) == 4 and parts[1] == "FormXml" and parts[2] in FORM_TYPES:
            element = _single(path, "forms", "systemform", folder)
            component_id = (element.findtext("formid") or "").strip()
            forms.append(Form(parts[0], parts[2], component_id, element, path))
        elif len(parts) == 3 and parts[1] == "SavedQueries":
            element = _single(path, "savedqueries", "savedquery", folder)
            component_id = (element.findtext("savedqueryid") or "").strip()
            views.append(View(parts[0], component_id, element, path))
        else:
            raise ValueError(f"Entities/{relative}: not a form (<Name>/FormXml/<type>/"
                             "{id}.xml, type one of " + ", ".join(FORM_TYPES) + ") or a view "
                             "(<Name>/SavedQueries/{id}.xml)")
        if not GUID_PATTERN.match(component_id) or path.name != f"{component_id}.xml":
            raise ValueError(f"Entities/{relative}: the id in the file is a lower-case "
                             "{guid} and names the file")
    ids = [form.id for form in forms] + [view.id for view in views]
    duplicates = sorted({component_id for component_id in ids if ids.count(component_id) > 1})
    if duplicates:
        raise ValueError(f"Entities: ids used more than once: {duplicates}")
    return tuple(forms), tuple(views)


def _child(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return XML_DECLARATION + text + b"\n"


def _required(root: ET.Element, path: str, source: str) -> ET.Element:
    element = root.find(path)
    if element is None:
        raise ValueError(f"{source}: no {path}")
    return element


def read_tables(source: Path) -> tuple[str, ...]:
    """The ``<Name>`` of every table ``Customizations.xml`` declares, in file order."""
    root = ET.parse(source / "Other" / "Customizations.xml").getroot()
    return tuple((entity.findtext("Name") or "").strip()
                 for entity in root.findall("Entities/Entity"))


def solution_xml(source: Path, resources: Sequence[WebResource], tables: Sequence[str] = (),
                 forms: Sequence[Form] = (), views: Sequence[View] = ()) -> bytes:
    """The manifest with the root components: the tables as shells, then the forms, the views
    and the web resources."""
    root = ET.parse(source / "Other" / "Solution.xml").getroot()
    manifest = _required(root, "SolutionManifest", "Solution.xml")
    components = manifest.find("RootComponents")
    if components is None:
        components = ET.SubElement(manifest, "RootComponents")
    for component in list(components):
        if component.get("type") in GENERATED_COMPONENTS:
            components.remove(component)
    for table in sorted({name.lower() for name in tables}):
        ET.SubElement(components, "RootComponent", {
            "type": ENTITY_COMPONENT, "schemaName": table, "behavior": SHELL})
    form_ids = sorted(form.id for form in forms)
    view_ids = sorted(view.id for view in views)
    for kind, ids in ((FORM_COMPONENT, form_ids), (VIEW_COMPONENT, view_ids)):
        for component_id in ids:
            ET.SubElement(components, "RootComponent", {
                "type": kind, "id": component_id, "behavior": WHOLE})
    for resource in resources:
        ET.SubElement(components, "RootComponent", {
            "type": WEB_RESOURCE_COMPONENT, "schemaName": resource.name, "behavior": WHOLE})
    return _serialise(root)


def _place_components(root: ET.Element, forms: Sequence[Form], views: Sequence[View]) -> None:
    """Each table's ``<FormXml>`` and ``<SavedQueries>``, after its ``<EntityInfo>``."""
    entities = {(entity.findtext("Name") or "").strip(): entity
                for entity in root.findall("Entities/Entity")}
    owners = {form.entity for form in forms} | {view.entity for view in views}
    undeclared = sorted(owners - set(entities))
    if undeclared:
        raise ValueError(f"Entities/{undeclared[0]}: Customizations.xml declares no table named "
                         f"{undeclared[0]}")
    for name, entity in entities.items():
        for tag in ("FormXml", "SavedQueries"):
            if entity.find(tag) is not None:
                raise ValueError(f"Customizations.xml: the {tag} of {name} comes from "
                                 f"Entities/{name}/, not from Customizations.xml")
        placed: list[ET.Element] = []
        own_forms = sorted((form for form in forms if form.entity == name),
                           key=lambda form: (form.type, form.id))
        if own_forms:
            form_xml = ET.Element("FormXml")
            for form_type in sorted({form.type for form in own_forms}):
                group = ET.SubElement(form_xml, "forms", {"type": form_type})
                group.extend(form.element for form in own_forms if form.type == form_type)
            placed.append(form_xml)
        own_views = sorted((view for view in views if view.entity == name),
                           key=lambda view: view.id)
        if own_views:
            saved_queries = ET.Element("SavedQueries")
            ET.SubElement(saved_queries, "savedqueries").extend(view.element for view in own_views)
            placed.append(saved_queries)
        info = _required(entity, "EntityInfo", f"Customizations.xml: {name}")
        position = list(entity).index(info) + 1
        for offset, element in enumerate(placed):
            entity.insert(position + offset, element)


def customizations_xml(source: Path, resources: Sequence[WebResource], version: str,
                       forms: Sequence[Form] = (), views: Sequence[View] = ()) -> bytes:
    """The customizations with each table's forms and views, and ``<WebResources>`` listing
    every web resource."""
    root = ET.parse(source / "Other" / "Customizations.xml").getroot()
    _place_components(root, forms, views)
    declared = root.find("WebResources")
    if declared is None:
        declared = ET.SubElement(root, "WebResources")
    declared.clear()
    for resource in resources:
        element = ET.SubElement(declared, "WebResource")
        _child(element, "WebResourceId", resource.id)
        _child(element, "Name", resource.name)
        _child(element, "DisplayName", resource.name)
        _child(element, "WebResourceType", str(resource.type))
        _child(element, "IntroducedVersion", version)
        _child(element, "IsEnabledForMobileClient", "0")
        _child(element, "IsAvailableForMobileOffline", "0")
        _child(element, "IsCustomizable", "1")
        _child(element, "CanBeDeleted", "1")
        _child(element, "IsHidden", "0")
        _child(element, "FileName", resource.file_name)
    names = {resource.name for resource in resources}
    missing = sorted({library.removeprefix(LIBRARY_PREFIX) for library in ribbon_libraries(root)}
                     - names)
    if missing:
        raise ValueError(f"the ribbon calls web resources the folder lacks: {missing}")
    return _serialise(root)


def ribbon_libraries(customizations: ET.Element) -> list[str]:
    """Every ``Library`` a ribbon ``JavaScriptFunction`` names."""
    return [function.get("Library", "")
            for function in customizations.iter("JavaScriptFunction")]


def schema_columns(schema: dict[str, Any]) -> dict[str, set[str]]:
    """The column names of every table in ``schema.json`` (its system columns included), by
    logical name."""
    system = {column["name"] for column in schema.get("system_columns", [])}
    return {table["logical_name"]: {column["name"] for column in table["columns"]} | system
            for table in schema["tables"]}


def check_columns(forms: Sequence[Form], views: Sequence[View], schema: dict[str, Any]) -> None:
    """Refuses forms and views naming columns ``schema.json`` does not define for the table."""
    tables = schema_columns(schema)
    problems: list[str] = []
    components: list[Form | View] = [*forms, *views]
    for component in components:
        where = f"{component.path.name} ({component.entity})"
        table = component.entity.lower()
        columns = tables.get(table)
        if columns is None:
            problems.append(f"{where}: schema.json has no table {table}")
            continue
        problems += [f"{where}: {problem}" for problem in component.column_problems(columns)]
    if problems:
        raise ValueError("forms and views against schema.json: " + "; ".join(problems))


def content_types_xml(names: Sequence[str]) -> bytes:
    """``[Content_Types].xml``: one ``Default`` per file extension in the zip."""
    extensions = sorted({Path(name).suffix.lstrip(".").lower() for name in names} - {""})
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<Types xmlns="{CONTENT_TYPES_NS}">']
    content_type = quoteattr(OCTET_STREAM)
    lines += [f"  <Default Extension={quoteattr(extension)} ContentType={content_type} />"
              for extension in extensions]
    lines.append("</Types>")
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Manifest:
    """What the builder reads from ``Solution.xml``."""

    unique_name: str
    version: str
    prefix: str


def read_manifest(source: Path) -> Manifest:
    manifest = _required(ET.parse(source / "Other" / "Solution.xml").getroot(),
                         "SolutionManifest", "Solution.xml")
    values = [(_required(manifest, path, "Solution.xml").text or "").strip()
              for path in ("UniqueName", "Version", "Publisher/CustomizationPrefix")]
    if not all(values):
        raise ValueError("Solution.xml: UniqueName, Version and CustomizationPrefix are required")
    return Manifest(*values)


def load_schema(path: Path = SCHEMA) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


CONFIG_SCRIPT = "ec_/programs/config.js"


@dataclass(frozen=True)
class Deployment:
    """What the CRM pages' config.js needs to reach a deployed connector."""

    api_base_url: str  # https://<function app>.azurewebsites.net/api
    client_id: str  # the single-page app registration MSAL.js signs in with
    tenant_id: str
    scope: str  # the connector API's scope, e.g. api://connector/user_impersonation
    authority_host: str = "https://login.microsoftonline.com"

    def placeholders(self) -> dict[str, str]:
        return {
            "https://<function app>.azurewebsites.net/api": self.api_base_url.rstrip("/"),
            "<client id of the dialog's single-page app registration>": self.client_id,
            "https://login.microsoftonline.com/<tenant id>":
                f"{self.authority_host.rstrip('/')}/{self.tenant_id}",
            "api://connector/user_impersonation": self.scope,
        }


def configured(script: bytes, deployment: Deployment | None) -> bytes:
    """config.js with the deployment's values in place of its placeholders."""
    if deployment is None:
        return script
    text = script.decode("utf-8")
    for placeholder, value in deployment.placeholders().items():
        if placeholder not in text:
            raise ValueError(f"{CONFIG_SCRIPT}: the placeholder {placeholder!r} is missing")
        if not value or any(quote in value for quote in "\"'\n<>"):
            raise ValueError(f"{CONFIG_SCRIPT}: {value!r} cannot stand for {placeholder!r}")
        text = text.replace(f'"{placeholder}"', json.dumps(value))
    return text.encode("utf-8")


def package(
    source: Path = SOURCE, schema: Path = SCHEMA, deployment: Deployment | None = None
) -> Package:
    """The zip's entries, built from ``source`` and checked against ``schema``; with
    ``deployment``, the CRM pages' config.js filled in for it."""
    manifest = read_manifest(source)
    definitions = load_schema(schema)
    if definitions["publisher"]["prefix"] != manifest.prefix:
        raise ValueError(f"Solution.xml: the publisher prefix {manifest.prefix} is not "
                         f"schema.json's {definitions['publisher']['prefix']}")
    resources = find_web_resources(source, manifest.prefix)
    forms, views = find_components(source)
    tables = read_tables(source)
    entries = {
        "customizations.xml": customizations_xml(source, resources, manifest.version,
                                                 forms, views),
        "solution.xml": solution_xml(source, resources, tables, forms, views),
    }
    check_columns(forms, views, definitions)
    for resource in resources:
        content = resource.path.read_bytes()
        if resource.name == CONFIG_SCRIPT:
            content = configured(content, deployment)
        entries[resource.archive_name] = content
    entries["[Content_Types].xml"] = content_types_xml([*entries, "[Content_Types].xml"])
    return Package(entries=entries, web_resources=resources, tables=tables, forms=forms,
                   views=views)


def write_zip(entries: dict[str, bytes], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, entries[name], compresslevel=9)


def build(out: Path, source: Path = SOURCE, schema: Path = SCHEMA,
          deployment: Deployment | None = None) -> Package:
    """Writes the solution zip to ``out``."""
    built = package(source, schema, deployment)
    write_zip(built.entries, out)
    return built


def default_out(source: Path = SOURCE) -> Path:
    manifest = read_manifest(source)
    version = manifest.version.replace(".", "_")
    return ROOT / ".run" / "solution" / f"{manifest.unique_name}_{version}.zip"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="the zip to write (default: .run/solution/<name>_<version>.zip)")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the solution's sources")
    target = parser.add_argument_group(
        "deployment", "fill in the CRM pages' config.js (all four, or none: placeholders stay)")
    target.add_argument("--api-url", help="https://<function app>.azurewebsites.net/api")
    target.add_argument("--client-id", help="the pages' single-page app registration")
    target.add_argument("--tenant-id", help="the Entra ID tenant")
    target.add_argument("--scope", help="the connector API's scope, e.g. "
                        "api://<connector client id>/user_impersonation")
    args = parser.parse_args(argv)
    values = (args.api_url, args.client_id, args.tenant_id, args.scope)
    if any(values) and not all(values):
        parser.error("--api-url, --client-id, --tenant-id and --scope go together")
    if args.api_url and not args.api_url.startswith("https://"):
        parser.error("--api-url must be an https:// URL")
    deployment = Deployment(*values) if all(values) else None
    out: Path = args.out or default_out(args.source)
    try:
        built = build(out, args.source, deployment=deployment)
    except ValueError as error:
        parser.error(str(error))
    if deployment is None:
        print(f"note: {CONFIG_SCRIPT} keeps its placeholders; give --api-url, --client-id, "
              "--tenant-id and --scope for a zip the CRM pages can use", file=sys.stderr)
    print(f"{out}: {len(built.tables)} tables, {len(built.forms)} forms, {len(built.views)} "
          f"views, {len(built.web_resources)} web resources, {len(built.entries)} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
