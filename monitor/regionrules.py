"""Rule sets and calendars per county: a provincial base plus county overrides.

The base is ``rules_dir``'s files. A county's overrides are the YAML files of its own
folder (``regions: CODE: rules_dir:``, else ``regions/CODE/`` under ``rules_dir``): a
rule with a base rule's id replaces it in that county only; ``{id: X, enabled: false}``
(no other key) switches base rule X off there; a rule of a new id is the county's own.

Evaluation judges each county's events and alerts by its own effective rules, counted in
its own calendar (config ``regions: CODE: calendar:``; only for the kinds that count
working days, ``WORKING_DAYS``): for every rule id,
:func:`plan` gives the groups of counties that share a rule and a calendar — the base
group, the other counties, as ``exclude_regions``; each county that differs, as
``regions`` — and the engine runs the rule once per group, keeping only the findings of
the group's counties (:func:`judged`). With no ``regions:`` and no override folder there
is one group with no counties named: a single county's runs are exactly as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import Connection

from . import regions as codes
from .alerts import finding_regions
from .calendar import WorkCalendar
from .config import Config
from .errors import RuleError, SourceError, SourceErrors, did_you_mean
from .regionstore import store_region
from .rules.finding import Finding
from .rules.kinds import KINDS, working_days
from .rules.loader import load_rules, parse_rule, rule_files
from .rules.model import Rule
from .supervision import Policy, policy_for
from .yamlsrc import LineDict, LineList, load_yaml

BASE = "base"  # where a rule in force comes from: the base, or regions/CODE
CHUNK = 500  # findings whose region is looked up per query


@dataclass(frozen=True)
class Off:
    """``{id: X, enabled: false}`` in a county's folder: base rule X is off there."""

    id: str
    path: str
    line: int


@dataclass(frozen=True)
class RuleSets:
    """The base rules and each county's overrides (in file order)."""

    base: tuple[Rule, ...]
    overrides: Mapping[str, tuple[Rule | Off, ...]] = field(
        default_factory=lambda: MappingProxyType({}))

    def effective(self, region: str) -> list[tuple[Rule | Off, str]]:
        """Every rule id's entry in force in ``region`` (a rule, or :class:`Off`), with
        where it comes from (``base`` or ``regions/CODE``), by id."""
        own = {r.id: r for r in self.overrides.get(region, ())}
        out = [(own.pop(r.id), f"regions/{region}") if r.id in own else (r, BASE)
               for r in self.base]
        out += [(r, f"regions/{region}") for r in own.values()]
        return sorted(out, key=lambda pair: pair[0].id)


def override_dirs(config: Config) -> dict[str, Path]:
    """County → the folder of its overrides (configured, else ``regions/CODE`` that
    exists under ``rules_dir``)."""
    found: dict[str, Path] = {}
    under = config.rules_dir / "regions"
    if under.is_dir():
        for folder in sorted(p for p in under.iterdir() if p.is_dir()):
            reason = codes.problem(folder.name)
            if reason is None and (folder.name == codes.UNNAMED
                                   or codes.level(folder.name) != codes.COUNTY):
                reason = f"须为县级行政区划代码（如 330106），而非 {folder.name}"
            if reason:
                raise RuleError(str(folder), None, f"不是地区代码的文件夹名：{reason}")
            found[folder.name] = folder
    for code, own in config.regions.items():
        if own.rules_dir is not None:
            if not own.rules_dir.is_dir():
                raise RuleError(str(own.rules_dir), None,
                                f"rules folder of region {code} not found (regions: {code}: "
                                "rules_dir: in config.yaml)")
            found[code] = own.rules_dir
    return found


def load_rule_sets(config: Config, base: list[Rule] | None = None) -> RuleSets:
    """The base (``base``, else ``rules_dir``'s files) and every county's overrides; all
    problems reported together, as :func:`~monitor.rules.loader.load_rules` does."""
    base = load_rules([config.rules_dir], config.limits) if base is None else base
    known = {r.id for r in base}
    errors: list[SourceError] = []
    overrides: dict[str, tuple[Rule | Off, ...]] = {}
    for code, folder in override_dirs(config).items():
        try:
            overrides[code] = _county(config, code, folder, known)
        except SourceErrors as exc:
            errors += exc.errors
    if errors:
        raise SourceErrors(errors)
    return RuleSets(tuple(base), MappingProxyType(overrides))


def candidate_sets(config: Config, directory: Path) -> RuleSets:
    """The rule sets of a candidate rule directory (``rules backtest --candidate``): its
    files are the base; its own ``regions/CODE/`` folders the counties' overrides when it
    has a ``regions/`` folder, else the current overrides apply over the candidate base."""
    base = load_rules([directory], config.limits)
    if (directory / "regions").is_dir():
        return load_rule_sets(replace(config, rules_dir=directory), base)
    return load_rule_sets(config, base)


def check_overrides(config: Config, base: list[Rule]) -> list[tuple[str, list[SourceError]]]:
    """Each county folder of overrides (``rules check``) and its problems, against the
    (good) ``base`` rules: what :func:`load_rule_sets` would stop a run with."""
    out: list[tuple[str, list[SourceError]]] = []
    try:
        folders = override_dirs(config)
    except RuleError as exc:
        return [(exc.path, [exc])]
    for code, folder in folders.items():
        try:
            _county(config, code, folder, {r.id for r in base})
            out.append((str(folder), []))
        except SourceErrors as exc:
            out.append((str(folder), list(exc.errors)))
    return out


def _county(config: Config, code: str, folder: Path, known: set[str]) -> tuple[Rule | Off, ...]:
    """A county's override entries, or :class:`SourceErrors` with every problem."""
    errors: list[SourceError] = []
    entries: dict[str, Rule | Off] = {}
    for path in rule_files(folder):
        try:
            for entry in _entries(path, config):
                if isinstance(entry, Off) and entry.id not in known:
                    raise RuleError(entry.path, entry.line,
                                    f"no base rule '{entry.id}' to switch off"
                                    f"{did_you_mean(entry.id, known)}")
                if entry.id in entries:
                    first = entries[entry.id]
                    raise RuleError(entry.path, entry.line,
                                    f"duplicate rule id '{entry.id}' in region {code} "
                                    f"(first at {first.path}:{first.line})")
                entries[entry.id] = entry
        except RuleError as exc:
            errors.append(exc)
    if errors:
        raise SourceErrors(errors)
    return tuple(entries.values())


def _entries(path: Path, config: Config) -> Iterator[Rule | Off]:
    where = str(path)
    raw = load_yaml(path, RuleError, config.limits.yaml)
    if isinstance(raw, LineDict):
        raw = raw.get("rules")
    if raw is None:
        return
    if not isinstance(raw, LineList):
        raise RuleError(where, getattr(raw, "line", 1), "expected a list of rules")
    for line, entry in zip(raw.item_lines, raw):
        if not isinstance(entry, LineDict):
            raise RuleError(where, line, "each rule must be a mapping")
        if set(entry) <= {"id", "enabled"} and "id" in entry:
            if entry.get("enabled") is not False:
                raise RuleError(where, line, f"rule '{entry['id']}' has no kind: a county's "
                                             "file either replaces a rule whole or switches "
                                             "it off with 'enabled: false'")
            yield Off(str(entry["id"]), where, line)
        else:
            yield parse_rule(entry, where, config.limits)


@dataclass(frozen=True)
class Group:
    """Counties judged by one rule in one calendar: ``rule``'s scope names them."""

    rule: Rule
    calendar: WorkCalendar


def plan(sets: RuleSets, calendar: WorkCalendar) -> dict[str, list[Group]]:
    """Rule id → its groups (enabled rules only; an id off everywhere has none)."""
    special = sorted(set(sets.overrides) | set(calendar.regions))
    base = {r.id: r for r in sets.base}
    ids = sorted(set(base) | {r.id for own in sets.overrides.values() for r in own})
    out: dict[str, list[Group]] = {}
    for rule_id in ids:
        keyed: dict[tuple[int, int], tuple[Rule | None, WorkCalendar, set[str]]] = {}
        home_key = (id(base.get(rule_id)), id(calendar))
        for code in special:
            entry = next((r for r in sets.overrides.get(code, ()) if r.id == rule_id),
                         base.get(rule_id))
            rule = entry if isinstance(entry, Rule) else None
            # a kind that counts no working days judges every calendar's counties alike
            own = calendar.for_region(code) \
                if rule is not None and working_days(KINDS[rule.kind]) else calendar
            key = (id(rule), id(own))
            if key != home_key:
                keyed.setdefault(key, (rule, own, set()))[2].add(code)
        groups = []
        home = base.get(rule_id)
        apart = frozenset(c for _, _, cs in keyed.values() for c in cs)
        if home is not None and home.enabled:
            groups.append(Group(replace(home, scope=replace(home.scope, exclude_regions=apart))
                                if apart else home, calendar))
        for rule, own, counties in keyed.values():
            if rule is not None and rule.enabled:
                groups.append(Group(replace(rule, scope=replace(
                    rule.scope, regions=frozenset(counties))), own))
        if groups:
            out[rule_id] = groups
    return out


def with_counties(policy: Policy, sets: RuleSets) -> Policy:
    """``policy`` with the handling days and the status of each county's own rules (a
    county's rule replaces the base whole: without ``handling_days`` it takes the
    setting, without ``status`` it is stable — not the base rule's)."""
    own = [(code, e) for code, entries in sets.overrides.items() for e in entries
           if isinstance(e, Rule)]
    if not own:
        return policy
    days = {(code, e.id): e.handling_days or policy.handling_days for code, e in own}
    statuses = {(code, e.id): e.status for code, e in own}
    return replace(policy, county_days=MappingProxyType(days),
                   county_statuses=MappingProxyType(statuses))


def county_policy(config: Config, sets: RuleSets | None = None) -> Policy:
    """The policy of the base rules with each county's own (:func:`with_counties`)."""
    sets = load_rule_sets(config) if sets is None else sets
    return with_counties(policy_for(config, list(sets.base)), sets)


def version(groups: list[Group]) -> str:
    """What a rule's watermark remembers: the rule's version when it judges every county
    alike, else a digest of each group's version and counties (a change of either
    evaluates the rule in full)."""
    if len(groups) == 1 and not groups[0].rule.scope.regions \
            and not groups[0].rule.scope.exclude_regions:
        return groups[0].rule.version
    text = "|".join(f"{g.rule.version}:{','.join(sorted(g.rule.scope.regions))}:"
                    f"{','.join(sorted(g.rule.scope.exclude_regions))}" for g in groups)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def judged(conn: Connection, rule: Rule, findings: Iterable[Finding]) -> Iterator[Finding]:
    """The findings of the counties ``rule``'s scope names (all, when it names none): a
    finding's county is its own (a finding about a department names it), else its case's,
    else its department's, else the store's own."""
    scope = rule.scope
    if not scope.regions and not scope.exclude_regions:
        yield from findings
        return
    home = store_region(conn)
    it = iter(findings)
    while chunk := list(islice(it, CHUNK)):
        for finding, region in zip(chunk, finding_regions(conn, chunk, home)):
            if scope.judges(region):
                yield finding


@dataclass(frozen=True)
class InForce:
    """One rule id as a county has it: the rule (None: switched off there), the file and
    line it comes from, and whether that is the base or the county's own folder."""

    id: str
    rule: Rule | None
    path: str
    line: int
    source: str  # base, or regions/CODE


def in_force(config: Config, region: str | None = None) -> list[InForce]:
    """The rule set in force in ``region`` (default: the store's own county), by id."""
    sets = load_rule_sets(config)
    region = codes.check(region or config.region)
    return [InForce(e.id, None if isinstance(e, Off) else e, e.path, e.line, source)
            for e, source in sets.effective(region)]


def county_rules(rules: RuleSets | list[Rule], region: str) -> list[Rule]:
    """The rules in force in ``region`` (those switched off there left out), by id;
    ``rules`` given as a list is a base no county overrides."""
    if not isinstance(rules, RuleSets):
        return list(rules)
    return [e for e, _ in rules.effective(region) if isinstance(e, Rule)]


def calibrated_rules(config: Config, region: str | None) -> list[Rule]:
    """The rules ``rules calibrate`` chooses among: the base's, or with ``region`` (a
    county's code, checked) the rules in force in that county."""
    if region is None:
        return load_rules([config.rules_dir], config.limits)
    return county_rules(load_rule_sets(config), codes.check(region))


def rule_in(sets: RuleSets, region: str, rule_id: str) -> InForce | None:
    """Rule ``rule_id`` as ``region`` has it (None: no such id anywhere there)."""
    for e, source in sets.effective(region):
        if e.id == rule_id:
            return InForce(e.id, None if isinstance(e, Off) else e, e.path, e.line, source)
    return None


def rules_seen(rules: RuleSets | list[Rule], scope: str | None) -> list[Rule]:
    """The rules in force in the counties an office of region ``scope`` sees (``None``:
    every county), one per id — what the control center offers, titles and exempts: the
    base's in their order (for a county, its own rule in place of a base rule it replaces,
    none for one it switches off), then the ids only a county under ``scope`` has (the
    first such county's rule), by id. Without overrides there, the base as it is."""
    if not isinstance(rules, RuleSets):
        return list(rules)
    county = scope is not None and codes.level(scope) == codes.COUNTY
    under = [c for c in sorted(rules.overrides)
             if scope is None or (c == scope if county else codes.covers(scope, c))]
    if not under:
        return list(rules.base)
    own: dict[str, Rule | Off] = {}
    for code in under:
        for e in rules.overrides[code]:
            own.setdefault(e.id, e)
    out = [own.pop(r.id, r) if county else r for r in rules.base]
    out += [own[i] for i in sorted(own) if i not in {r.id for r in rules.base}]
    return [r for r in out if isinstance(r, Rule)]


def ids_seen(rules: RuleSets | list[Rule]) -> Callable[[str], list[str]]:
    """region → the ids of :func:`rules_seen` there (what an exemption may name)."""
    return lambda region: [r.id for r in rules_seen(rules, region)]
