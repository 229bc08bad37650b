"""Rule ids and rule kinds as the titles a person reads, for the words of a report or a page
(monitor/vocabulary.py). Here, above both the rules and the reports, because a rule kind
(ranking_last) reads the scorecard: the report cannot load rules itself without an import
circle, so its callers hand these titles in.
"""

from __future__ import annotations

from collections.abc import Iterable

from .config import Config
from .errors import MonitorError
from .rules.kinds import KINDS
from .rules.loader import load_rules
from .rules.model import Rule


def titles(config: Config, rules: Iterable[Rule] | None = None) -> dict[str, str]:
    """Kind → its default title, rule id → its title (``rules``, else those of
    ``rules_dir``; none if they cannot be loaded: ``run`` says what is wrong with them)."""
    out = {name: kind.TITLE for name, kind in KINDS.items()}
    if rules is None:
        try:
            rules = load_rules([config.rules_dir])
        except MonitorError:
            rules = []
    out.update({r.id: r.title for r in rules})
    return out
