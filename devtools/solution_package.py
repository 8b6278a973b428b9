"""Builds the unmanaged Dataverse solution ``ecdotdigitalconnector`` from its sources.

The sources are in ``infra/dynamics/solution/``:

- ``Other/Solution.xml``: the manifest (unique name, version, publisher ``ec``) and the entity
  root components (``contact`` and ``lead`` as shells carrying their ribbon);
- ``Other/Customizations.xml``: the ribbon (``RibbonDiffXml``) of ``contact`` and ``lead``;
- ``WebResources/``: one file per web resource, its path below the folder being its name
  (``WebResources/ec_/programs/command.js`` is the web resource ``ec_/programs/command.js``).

The web resources are whatever files the folder holds: the builder declares each in
``customizations.xml`` (``<WebResources>``) and as a root component (type 61) in
``solution.xml``, so adding a file needs no other edit. The zip is deterministic: fixed
timestamps and attributes, entries in name order, web resource ids derived from their names, so
two builds of the same sources are byte-identical.

    python -m devtools.solution_package [--out PATH] [--source DIR]
"""

from __future__ import annotations

import argparse
import re
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "infra" / "dynamics" / "solution"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
WEB_RESOURCE_COMPONENT = "61"
OCTET_STREAM = "application/octet-stream"

# WebResourceType by file extension (the webresource table's webresourcetype choice).
WEB_RESOURCE_TYPES: dict[str, int] = {
    ".html": 1, ".htm": 1, ".css": 2, ".js": 3, ".xml": 4, ".png": 5, ".jpg": 6, ".jpeg": 6,
    ".gif": 7, ".xap": 8, ".xsl": 9, ".xslt": 9, ".ico": 10, ".svg": 11, ".resx": 12,
}
# Web resource names: letters, digits, underscores, dots and slashes (Dataverse's rule), under
# the publisher prefix.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./]*$")
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
class Package:
    """What goes into the zip: its entries by name, and the web resources declared."""

    entries: dict[str, bytes]
    web_resources: tuple[WebResource, ...]


# Web resources that come from a package rather than from the sources: MSAL.js, which the dialog
# loads beside itself to get the CRM user's token in Dynamics (npm, pinned in package.json).
VENDORED = {
    "ec_/programs/msal-browser.min.js":
        ROOT / "node_modules" / "@azure" / "msal-browser" / "lib" / "msal-browser.min.js",
}


def find_web_resources(source: Path, prefix: str) -> tuple[WebResource, ...]:
    """Every file under ``source/WebResources`` (hidden files skipped) and the vendored ones,
    in name order."""
    folder = source / "WebResources"
    found: list[WebResource] = []
    for name, path in VENDORED.items():
        if not path.is_file():
            raise ValueError(f"{name}: {path.relative_to(ROOT)} is missing (run npm ci)")
        found.append(WebResource(name=name, path=path, type=WEB_RESOURCE_TYPES[".js"]))
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        name = relative.as_posix()
        kind = WEB_RESOURCE_TYPES.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"{name}: no web resource type for {path.suffix or 'no extension'}")
        if not NAME_PATTERN.match(name) or not name.startswith(f"{prefix}_"):
            raise ValueError(f"{name}: a web resource name is {prefix}_/..., letters, digits, "
                             "underscores, dots and slashes")
        found.append(WebResource(name=name, path=path, type=kind))
    return tuple(sorted(found, key=lambda resource: resource.name))


def _child(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return text + b"\n"


def _required(root: ET.Element, path: str, source: str) -> ET.Element:
    element = root.find(path)
    if element is None:
        raise ValueError(f"{source}: no {path}")
    return element


def solution_xml(source: Path, resources: Sequence[WebResource]) -> bytes:
    """The manifest with a root component (type 61) per web resource."""
    root = ET.parse(source / "Other" / "Solution.xml").getroot()
    manifest = _required(root, "SolutionManifest", "Solution.xml")
    components = manifest.find("RootComponents")
    if components is None:
        components = ET.SubElement(manifest, "RootComponents")
    for component in list(components):
        if component.get("type") == WEB_RESOURCE_COMPONENT:
            components.remove(component)
    for resource in resources:
        ET.SubElement(components, "RootComponent", {
            "type": WEB_RESOURCE_COMPONENT, "schemaName": resource.name, "behavior": "0"})
    return _serialise(root)


def customizations_xml(source: Path, resources: Sequence[WebResource], version: str) -> bytes:
    """The customizations with ``<WebResources>`` listing every web resource."""
    root = ET.parse(source / "Other" / "Customizations.xml").getroot()
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


def package(source: Path = SOURCE) -> Package:
    """The zip's entries, built from ``source``."""
    manifest = read_manifest(source)
    resources = find_web_resources(source, manifest.prefix)
    entries = {
        "solution.xml": solution_xml(source, resources),
        "customizations.xml": customizations_xml(source, resources, manifest.version),
    }
    for resource in resources:
        entries[resource.archive_name] = resource.path.read_bytes()
    entries["[Content_Types].xml"] = content_types_xml([*entries, "[Content_Types].xml"])
    return Package(entries=entries, web_resources=resources)


def write_zip(entries: dict[str, bytes], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, entries[name], compresslevel=9)


def build(out: Path, source: Path = SOURCE) -> Package:
    """Writes the solution zip to ``out``."""
    built = package(source)
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
    args = parser.parse_args(argv)
    out: Path = args.out or default_out(args.source)
    built = build(out, args.source)
    print(f"{out}: {len(built.web_resources)} web resources, {len(built.entries)} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
