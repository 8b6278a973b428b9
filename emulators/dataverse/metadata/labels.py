"""Labels: localized texts by language code, their JSON shape, and ``MSCRM.MergeLabels``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emulators.dataverse.metadata import failures
from emulators.dataverse.metadata.names import DEFAULT_LANGUAGE, type_name

Label = Mapping[int, str]  # language code -> text


def text(label: Label) -> str | None:
    """The text users of the environment's base language see."""
    return label.get(DEFAULT_LANGUAGE) or next(iter(label.values()), None)


def render(label: Label, label_id: Callable[[int], str]) -> dict[str, Any]:
    """``Microsoft.Dynamics.CRM.Label`` as the Web API returns it."""
    localized = [
        {"@odata.type": f"#{type_name('LocalizedLabel')}", "Label": value,
         "LanguageCode": language, "IsManaged": False, "MetadataId": label_id(language),
         "HasChanged": None}
        for language, value in sorted(label.items())
    ]
    user = next((item for item in localized if item["LanguageCode"] == DEFAULT_LANGUAGE),
                localized[0] if localized else None)
    return {"LocalizedLabels": localized, "UserLocalizedLabel": user}


def parse(raw: Any, where: str) -> dict[int, str]:
    """A label from a request body; ``None`` (or a missing property) is an empty label."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("LocalizedLabels", []), list):
        raise failures.bad_value(where, "a Label with LocalizedLabels")
    parsed: dict[int, str] = {}
    for index, item in enumerate(raw.get("LocalizedLabels", [])):
        spot = f"{where}.LocalizedLabels[{index}]"
        if not isinstance(item, Mapping):
            raise failures.bad_value(spot, "a LocalizedLabel")
        value, language = item.get("Label"), item.get("LanguageCode")
        if not isinstance(value, str) or not isinstance(language, int) or isinstance(
            language, bool
        ):
            raise failures.bad_value(spot, "a LocalizedLabel with Label and LanguageCode")
        parsed[language] = value
    return parsed


def merged(old: Label, new: Label, *, merge: bool) -> dict[int, str]:
    """What an update leaves: with ``MSCRM.MergeLabels: true`` the languages the update does
    not mention keep their text; without it the update's labels replace them all."""
    return {**old, **new} if merge else dict(new)


def of(value: str | None) -> dict[int, str]:
    """A label in the base language (empty for no text)."""
    return {DEFAULT_LANGUAGE: value} if value else {}
