"""Rules as loaded from YAML: frozen, validated, never mutated."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

LEVELS = ("warning", "yellow", "red")
ACTIONS = ("alert", "halt")
# Maturity of a rule (as in Sigma): only stable rules escalate to tier 2 or halt cases;
# experimental ones record findings without notifying or assigning anyone.
STATUSES = ("experimental", "test", "stable")
# What the workflow gate (monitor/gate.py) does with a rule's finding on a candidate event:
# refuse it, or let it through with a warning. Off unless a rule opts in.
GATE_EFFECTS = ("deny", "warn")


REGION_FIELDS = ("regions", "exclude_regions")


@dataclass(frozen=True)
class Scope:
    """Which cases a rule looks at: include lists narrow, exclude lists remove."""

    departments: frozenset[str] = frozenset()
    items: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    exclude_departments: frozenset[str] = frozenset()
    exclude_items: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    # the counties a rule judges in a store of several (set by the engine from the rule
    # sets per region, monitor/regionrules.py; never written in a rule file): not part of
    # the rule's version, which is the file's
    regions: frozenset[str] = frozenset()
    exclude_regions: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.__dict__.items()
                if v and k not in REGION_FIELDS}

    def judges(self, region: str) -> bool:
        """Whether a finding of county ``region`` is this scope's (its regions only)."""
        return (not self.regions or region in self.regions) \
            and region not in self.exclude_regions


@dataclass(frozen=True)
class Variant:
    """A title and message a rule uses for some of its findings instead of its own (the
    kind chooses, e.g. ``fine`` for a fee finding on a penalty item; see kinds.Kind)."""

    title: str
    message: str


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    kind: str
    params: Any  # the kind's frozen Params dataclass
    level: str = "yellow"
    enabled: bool = True
    scope: Scope = field(default_factory=Scope)
    message: str = ""
    references: tuple[str, ...] = ()
    action: str = "alert"
    handling_days: int | None = None  # working days tier 1 has to act; None: the setting
    status: str = "stable"  # experimental | test | stable (not part of the version)
    gate: str | None = None  # deny | warn: the workflow gate consults it (None: it does not)
    path: str = ""
    line: int = 0
    variants: tuple[tuple[str, Variant], ...] = ()  # (name, Variant), sorted by name

    def variant(self, name: str | None) -> Variant:
        """The title and message of a finding of this rule with variant ``name`` (None, or
        one the rule does not have: the rule's own)."""
        return dict(self.variants).get(name or "", Variant(self.title, self.message))

    @cached_property  # frozen: computed once per loaded rule (the gate asks it per decision)
    def version(self) -> str:
        """Hash of everything that decides findings: stored with each alert as evidence."""
        params = {k: v for k, v in sorted(self.params.__dict__.items())}
        decides: dict[str, Any] = {"kind": self.kind, "level": self.level,
                                   "scope": self.scope.as_dict(), "params": params,
                                   "message": self.message, "action": self.action}
        if self.variants:  # only then: other rules keep the version they had
            decides["variants"] = {k: v.message for k, v in self.variants}
        if self.gate:  # only when set: the versions of rules without it stay as they were
            decides["gate"] = self.gate
        text = json.dumps(decides,
                          sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
