"""The ``mapping`` section: how the attributes of an XES event log map to the event contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..yamlsrc import LineDict
from .settings import Setting, declared, read_section

MAPPING_SETTINGS: tuple[Setting, ...] = (
    Setting("case_id", "case:concept:name", str, "Trace attribute holding the case id."),
    Setting("step", "concept:name", str, "Event attribute holding the activity name."),
    Setting("actor", "org:resource", str, "Event attribute holding who did it."),
    Setting("occurred_at", "time:timestamp", str, "Event attribute holding when it happened."),
    Setting("event_id", None, str,
            "Event attribute with a unique id; unset: derived from case, position and content."),
    Setting("item_code", None, str, "Catalog item code given to every imported case (required)."),
    Setting("department", None, str, "Department code; unset: the item's department."),
    Setting("steps", {}, dict, "Activity name → contract step (accept, review …); others kept."),
    Setting("lifecycle", ["complete"], list,
            "lifecycle:transition values imported; events with other transitions are skipped."),
)


@dataclass(frozen=True)
class XesMapping:
    case_id: str = declared(MAPPING_SETTINGS, "case_id")
    step: str = declared(MAPPING_SETTINGS, "step")
    actor: str = declared(MAPPING_SETTINGS, "actor")
    occurred_at: str = declared(MAPPING_SETTINGS, "occurred_at")
    event_id: str | None = declared(MAPPING_SETTINGS, "event_id")
    item_code: str | None = declared(MAPPING_SETTINGS, "item_code")
    department: str | None = declared(MAPPING_SETTINGS, "department")
    steps: Mapping[str, str] = declared(MAPPING_SETTINGS, "steps")
    lifecycle: tuple[str, ...] = declared(MAPPING_SETTINGS, "lifecycle")


def load_mapping(raw: LineDict, where: str) -> XesMapping:
    """The ``mapping`` section of a config file, validated."""
    values = read_section(raw, MAPPING_SETTINGS, where)
    values["steps"] = MappingProxyType({str(k): str(v)
                                        for k, v in (values["steps"] or {}).items()})
    values["lifecycle"] = tuple(str(v) for v in values["lifecycle"])
    return XesMapping(**values)
