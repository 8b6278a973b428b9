"""Global choices (``GlobalOptionSetDefinitions``), the option actions (``InsertOptionValue``,
``UpdateOptionValue``, ``DeleteOptionValue``) and ``PublishXml``/``PublishAllXml``."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from emulators.dataverse.calls import Outcome
from emulators.dataverse.metadata import changes, failures, labels, parse
from emulators.dataverse.metadata.context import Key, MetadataCall
from emulators.dataverse.metadata.names import INT_RANGE
from emulators.dataverse.metadata.render import OPTION_SET_PROPERTIES
from emulators.dataverse.schema import ChoiceOption, Column, Schema, Table


def list_option_sets(request: MetadataCall) -> Outcome:
    if "$filter" in request.raw_options:
        # Reported from a real environment: this set takes no $filter.
        raise failures.query("The query option '$filter' is not supported on "
                             "GlobalOptionSetDefinitions.", status=405)
    options = request.options("OptionSetMetadata", OPTION_SET_PROPERTIES)
    view = request.view
    items = [options.project(view.global_option_set(name)) for name in sorted(view.schema.choices)]
    return request.collection("GlobalOptionSetDefinitions", items)


def _find(request: MetadataCall, key: Key) -> str:
    view = request.view
    if key.metadata_id is not None:
        name = view.choice_by_id(key.metadata_id)
    elif key.name == "Name":
        name = key.value if key.value in view.schema.choices else None
    else:
        raise failures.query(f"'{key.name}' is not a key of GlobalOptionSetDefinitions.")
    if name is None:
        raise failures.option_set_not_found(str(key))
    return name


def get_option_set(request: MetadataCall, key: Key) -> Outcome:
    name = _find(request, key)
    options = request.options("OptionSetMetadata", OPTION_SET_PROPERTIES)
    return request.entity("GlobalOptionSetDefinitions",
                          options.project(request.view.global_option_set(name)))


def create_option_set(request: MetadataCall) -> Outcome:
    request.require_customizer("prvCreateOptionSet")
    api = request.api
    parsed = parse.option_set(request.body(), api.schema.option_value_prefix)
    if parsed.name in api.schema.choices:
        raise failures.not_unique("option set", parsed.name)
    key = f"optionset/{parsed.name}"
    for prop, label in parsed.labels.items():
        api.catalog.set_label(key, prop, label)
    for value, label in parsed.option_labels.items():
        api.catalog.set_label(f"{key}/{value}", "Label", label)
    request.record_solution(key)
    request.commit(changes.with_choice(api.schema, parsed.name, parsed.options))
    return request.created(f"GlobalOptionSetDefinitions({request.view.id(key)})")


def update_option_set(request: MetadataCall, key: Key) -> Outcome:
    """Labels only: options change through the option actions, never through a PUT."""
    request.require_customizer("prvWriteOptionSet")
    api = request.api
    name = _find(request, key)
    body = parse.body_object(request.body(), "OptionSetMetadata")
    parse.check_type(body, "OptionSetMetadata")
    parse.check_properties(body, OPTION_SET_PROPERTIES, "OptionSetMetadata")
    if body.get("Name") not in (None, name):
        raise failures.invalid(f"The Name of option set {name} cannot be changed.")
    component = f"optionset/{name}"
    default = request.view.choice_display_name(name)
    for prop, fallback in (("DisplayName", default), ("Description", None)):
        old = api.catalog.label(component, prop, fallback)
        api.catalog.set_label(component, prop, labels.merged(
            old, parse.label_of(body, prop), merge=request.merge_labels))
    request.record_solution(component)
    return request.no_content()


# --- option actions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    """The options an action changes: a global choice, or a column's local option set."""

    key: str  # catalog key of the option set
    options: tuple[ChoiceOption, ...]
    apply: Callable[[tuple[ChoiceOption, ...]], Schema]
    where: str


_TARGET_PARAMETERS = frozenset({"OptionSetName", "EntityLogicalName", "AttributeLogicalName",
                                "SolutionUniqueName"})


def _target(request: MetadataCall, parameters: Mapping[str, Any]) -> _Target:
    schema = request.api.schema
    name = parameters.get("OptionSetName")
    if name is not None:
        if name not in schema.choices:
            raise failures.option_set_not_found(f"Name='{name}'")
        return _Target(f"optionset/{name}", schema.choices[name],
                       lambda options: changes.with_choice(schema, name, options),
                       f"option set {name}")
    entity, attribute = parameters.get("EntityLogicalName"), parameters.get("AttributeLogicalName")
    if not isinstance(entity, str) or not isinstance(attribute, str):
        raise failures.invalid("Name the option set: OptionSetName, or EntityLogicalName and "
                               "AttributeLogicalName.")
    table = request.view.table(entity)
    if table is None:
        raise failures.entity_not_found(entity)
    column = table.columns.get(attribute)
    if column is None:
        raise failures.attribute_not_found(entity, f"LogicalName='{attribute}'")
    if column.choice is not None:
        return _target(request, {"OptionSetName": column.choice})
    if column.type in ("state", "status"):
        raise failures.not_emulated("Changing the options of a state or status column "
                                    "(InsertStatusValue, UpdateStateValue)")
    if column.type != "choice":
        raise failures.invalid(f"{entity}.{attribute} has no option set of choices.")
    return _Target(f"optionset/{entity}/{attribute}", column.options,
                   lambda options: _with_local(schema, table, column, options),
                   f"attribute {entity}.{attribute}")


def _with_local(schema: Schema, table: Table, column: Column,
                options: tuple[ChoiceOption, ...]) -> Schema:
    default = column.default if column.default in {o.value for o in options} else None
    return changes.with_column(schema, table.logical_name,
                               replace(column, options=options, default=default))


def _value(parameters: Mapping[str, Any], *, required: bool) -> int | None:
    value = parameters.get("Value")
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (
            INT_RANGE[0] <= value <= INT_RANGE[1]):
        raise failures.bad_value("Value", "a whole number")
    return value


def _record_action_solution(request: MetadataCall, parameters: Mapping[str, Any],
                            key: str) -> None:
    solution = parameters.get("SolutionUniqueName")
    if isinstance(solution, str) and solution:
        request.api.catalog.solutions[key] = solution
    else:
        request.record_solution(key)


def insert_option_value(request: MetadataCall) -> Outcome:
    request.require_customizer("prvWriteOptionSet")
    parameters = request.parameters("InsertOptionValue", _TARGET_PARAMETERS | {
        "Value", "Label", "Description", "Color", "ExternalValue", "IsHidden", "ParentValues"})
    target = _target(request, parameters)
    value = _value(parameters, required=False)
    taken = {option.value for option in target.options}
    if value is None:
        value = request.api.schema.option_value_prefix * 10_000
        while value in taken:
            value += 1
    elif value in taken:
        raise failures.invalid(f"The option value {value} already exists in {target.where}.")
    label = labels.parse(parameters.get("Label"), "Label")
    if not label:
        raise failures.missing("Label", "option")
    catalog = request.api.catalog
    catalog.set_label(f"{target.key}/{value}", "Label", label)
    description = labels.parse(parameters.get("Description"), "Description")
    if description:
        catalog.set_label(f"{target.key}/{value}", "Description", description)
    _record_action_solution(request, parameters, target.key)
    option = ChoiceOption(value=value, label=labels.text(label) or str(value))
    request.commit(target.apply((*target.options, option)))
    return request.json({
        "@odata.context": f"{request.api.api_url}$metadata#Microsoft.Dynamics.CRM."
                          "InsertOptionValueResponse",
        "NewOptionValue": value,
    })


def update_option_value(request: MetadataCall) -> Outcome:
    request.require_customizer("prvWriteOptionSet")
    parameters = request.parameters("UpdateOptionValue", _TARGET_PARAMETERS | {
        "Value", "Label", "Description", "MergeLabels", "Color", "ExternalValue", "IsHidden",
        "ParentValues"})
    target = _target(request, parameters)
    value = _value(parameters, required=True)
    merge = parameters.get("MergeLabels")
    if not isinstance(merge, bool):
        raise failures.missing("MergeLabels", "UpdateOptionValue request")
    existing = next((option for option in target.options if option.value == value), None)
    if existing is None or value is None:
        raise failures.option_not_found(value or 0, target.where)
    catalog = request.api.catalog
    key = f"{target.key}/{value}"
    new_label = labels.merged(catalog.label(key, "Label", existing.label),
                              labels.parse(parameters.get("Label"), "Label"), merge=merge)
    catalog.set_label(key, "Label", new_label)
    if "Description" in parameters:
        catalog.set_label(key, "Description", labels.merged(
            catalog.label(key, "Description", None),
            labels.parse(parameters.get("Description"), "Description"), merge=merge))
    _record_action_solution(request, parameters, target.key)
    renamed = replace(existing, label=labels.text(new_label) or existing.label)
    request.commit(target.apply(tuple(renamed if option.value == value else option
                                      for option in target.options)))
    return request.no_content()


def delete_option_value(request: MetadataCall) -> Outcome:
    """Rows keep a deleted value (the service does not rewrite data); writes refuse it."""
    request.require_customizer("prvWriteOptionSet")
    parameters = request.parameters("DeleteOptionValue", _TARGET_PARAMETERS | {"Value"})
    target = _target(request, parameters)
    value = _value(parameters, required=True)
    if value is None or all(option.value != value for option in target.options):
        raise failures.option_not_found(value or 0, target.where)
    request.api.catalog.forget(f"{target.key}/{value}")
    request.commit(target.apply(tuple(option for option in target.options
                                      if option.value != value)))
    return request.no_content()


def publish_xml(request: MetadataCall) -> Outcome:
    """Changes are live at once in the emulator; a publish only checks what it is given."""
    request.require_customizer("prvPublishCustomization")
    parameters = request.parameters("PublishXml", frozenset({"ParameterXml"}))
    text = parameters.get("ParameterXml")
    if not isinstance(text, str):
        raise failures.missing("ParameterXml", "PublishXml request")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as problem:
        raise failures.invalid(f"ParameterXml is not well-formed XML: {problem}") from None
    if root.tag != "importexportxml":
        raise failures.invalid("ParameterXml must be an <importexportxml> document.")
    view = request.view
    for entity in root.iterfind("entities/entity"):
        if view.table((entity.text or "").strip()) is None:
            raise failures.entity_not_found((entity.text or "").strip())
    for option_set in root.iterfind("optionsets/optionset"):
        if (option_set.text or "").strip() not in view.schema.choices:
            raise failures.option_set_not_found(f"Name='{(option_set.text or '').strip()}'")
    return request.no_content()


def publish_all_xml(request: MetadataCall) -> Outcome:
    request.require_customizer("prvPublishCustomization")
    if request.call.body.strip():
        request.parameters("PublishAllXml", frozenset())
    return request.no_content()


ACTION_HANDLERS: dict[str, Callable[[MetadataCall], Outcome]] = {
    "InsertOptionValue": insert_option_value,
    "UpdateOptionValue": update_option_value,
    "DeleteOptionValue": delete_option_value,
    "PublishXml": publish_xml,
    "PublishAllXml": publish_all_xml,
}
