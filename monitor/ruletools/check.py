"""``rules check``: validate rule files, and the catalog names they use, for people and hooks.

Each file is loaded by the same loader the engine uses (monitor/rules/loader.py), so a
file that passes here loads in ``run``. On top of that, names a rule uses from the
catalog's vocabulary are checked where a typo would silently match nothing: step names
(``min_minutes`` keys, ``steps`` lists), roles (``authorising_roles``), scope categories,
and — with a catalog file — scope departments and item codes. No database is opened:
cheap enough for a pre-commit hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import CATEGORIES, ROLES, STEPS, load_catalog
from ..errors import RuleError, SourceError, SourceErrors, did_you_mean
from ..yamlsrc import LineDict, LineList, load_yaml
from ..config import Limits
from ..rules.loader import DEFAULT_LIMITS, load_rule_file, rule_files
from ..rules.model import Rule

# kind → {parameter: what it names}: "steps" (mapping keys or list values), "roles",
# "item_steps" (item code → {step: …})
NAMED_PARAMS = {
    "step_too_fast": {"min_minutes": "steps", "item_min_minutes": "item_steps"},
    "same_actor_roles": {"steps": "steps"},
    "fee_waiver": {"authorising_roles": "roles"},
    "unpaid_fee": {"authorising_roles": "roles"},
}


@dataclass
class FileReport:
    path: str
    rules: list[Rule] = field(default_factory=list)
    problems: list[SourceError] = field(default_factory=list)


@dataclass(frozen=True)
class Vocabulary:
    """What names may be used; departments/items empty = not checked (no catalog given)."""

    steps: frozenset[str] = frozenset(STEPS)
    roles: frozenset[str] = frozenset(ROLES)
    categories: frozenset[str] = frozenset(CATEGORIES)
    departments: frozenset[str] = frozenset()
    items: frozenset[str] = frozenset()


def vocabulary(catalog: str | Path | None, limits: Limits = DEFAULT_LIMITS) -> Vocabulary:
    """The fixed vocabulary, plus the departments and items of a catalog file if given."""
    if catalog is None:
        return Vocabulary()
    data = load_catalog(catalog, limits=limits.yaml)
    return Vocabulary(departments=frozenset(d["code"] for d in data.departments),
                      items=frozenset(i["code"] for i in data.items))


def check_paths(paths: Iterable[str | Path], vocab: Vocabulary | None = None,
                limits: Limits = DEFAULT_LIMITS) -> list[FileReport]:
    """One report per rule file (directories expanded), duplicate ids across files too."""
    vocab = vocab or Vocabulary()
    files: list[Path] = []
    reports: list[FileReport] = []
    for p in map(Path, paths):
        try:
            files.extend(rule_files(p) if p.is_dir() else [p])
        except RuleError as exc:
            reports.append(FileReport(str(p), problems=[exc]))
    for f in files:
        report = FileReport(str(f))
        try:
            report.rules = load_rule_file(f, report.problems, limits)
            report.problems += _names(f, report.rules, vocab, limits)
            report.problems.sort(key=lambda e: e.line or 0)
        except SourceErrors as exc:
            report.problems += exc.errors
        except SourceError as exc:
            report.problems.append(exc)
        reports.append(report)
    seen: dict[str, Rule] = {}
    for report in reports:
        for rule in report.rules:
            first = seen.setdefault(rule.id, rule)
            if first is not rule:
                report.problems.append(RuleError(rule.path, rule.line,
                                                 f"duplicate rule id '{rule.id}' (first at "
                                                 f"{first.path}:{first.line})"))
    return reports


def _names(path: Path, rules: list[Rule], vocab: Vocabulary,
           limits: Limits) -> list[SourceError]:
    """Problems with catalog names in the (already valid) rules of one file."""
    raw = load_yaml(path, RuleError, limits.yaml)
    entries = raw.get("rules") if isinstance(raw, LineDict) else raw
    by_line = {e.line: e for e in (entries if isinstance(entries, LineList) else [])
               if isinstance(e, LineDict)}
    where, problems = str(path), list[SourceError]()

    def check(name, allowed: frozenset[str], what: str, line: int) -> None:
        if allowed and str(name) not in allowed:
            problems.append(RuleError(where, line, f"unknown {what} '{name}'"
                                                   f"{did_you_mean(str(name), allowed)}"))

    for rule in rules:
        raw_rule = by_line.get(rule.line, LineDict(line=rule.line))
        raw_params = raw_rule.get("params")
        params = raw_params if isinstance(raw_params, LineDict) \
            else LineDict(line=raw_rule.line_of("params"))
        for name, what in NAMED_PARAMS.get(rule.kind, {}).items():
            if name not in params:
                continue
            line, value = params.line_of(name), params[name]
            if what == "item_steps":
                for item, steps in value.items():
                    check(item, vocab.items, "item", _line(value, item, line))
                    for step in steps:
                        check(step, vocab.steps, "step", _line(value, item, line))
                continue
            names = value.keys() if isinstance(value, dict) else \
                ([value] if isinstance(value, str) else value)
            for n in names:
                check(n, vocab.steps if what == "steps" else vocab.roles, what[:-1],
                      _line(value, n, line))
        scope = raw_rule.get("scope")
        if isinstance(scope, LineDict):
            for part in ("include", "exclude"):
                section = scope.get(part)
                if not isinstance(section, LineDict):
                    continue
                for key, allowed, what in (("categories", vocab.categories, "category"),
                                           ("departments", vocab.departments, "department"),
                                           ("items", vocab.items, "item")):
                    codes = section.get(key) or []
                    for code in [codes] if isinstance(codes, str) else codes:
                        check(code, allowed, what, section.line_of(key))
    return problems


def _line(container, key, default: int) -> int:
    return container.line_of(key) if isinstance(container, LineDict) else default
