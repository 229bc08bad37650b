"""Loading rule files: safe YAML, every key checked, one clear ``path:line`` error each.

A rule names its ``kind`` from the fixed registry (:data:`monitor.rules.kinds.KINDS`);
nothing in a file can name Python code, and message templates may only refer to the
finding's plain fields, so a rule file can never run code or reach SQL.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from ..config import Limits
from ..errors import RuleError, SourceError, SourceErrors, did_you_mean
from ..yamlsrc import LineDict, LineList, check_keys, load_yaml
from .kinds import KINDS, COMMON_FIELDS, gate_effects
from .model import ACTIONS, GATE_EFFECTS, LEVELS, STATUSES, Rule, Scope, Variant
from .params import build_params

RULE_KEYS = {"id", "title", "kind", "enabled", "level", "scope", "params", "message",
             "references", "action", "handling_days", "status", "gate", "variants"}
VARIANT_KEYS = {"title", "message"}
SCOPE_KEYS = {"include", "exclude"}
SCOPE_LISTS = {"departments", "items", "categories"}
DEFAULT_LIMITS = Limits()
NUMBER = re.compile(r"\d+")


def _text(rule: LineDict, key: str, path: str, default: str | None = None) -> str:
    value = rule.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise RuleError(path, rule.line_of(key), f"'{key}' must be non-empty text, got {value!r}")
    return value.strip()


def _choice(rule: LineDict, key: str, choices: tuple[str, ...], default: str, path: str) -> str:
    value = rule.get(key, default)
    if value not in choices:
        raise RuleError(path, rule.line_of(key), f"'{key}' must be one of {', '.join(choices)}, "
                                                 f"got {value!r}{did_you_mean(str(value), choices)}")
    return value


def _days(rule: LineDict, key: str, path: str) -> int | None:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuleError(path, rule.line_of(key), f"'{key}' must be a whole number of working "
                                                 f"days ≥ 1, got {value!r}")
    return value


def _gate(rule: LineDict, kind_name: str, path: str) -> str | None:
    """The rule's ``gate`` effect: what the kind supports (``overdue`` only warns)."""
    if rule.get("gate") is None:
        return None
    value = _choice(rule, "gate", GATE_EFFECTS, "deny", path)
    supported = gate_effects(KINDS[kind_name])
    if value not in supported:
        gated = [k for k, kind in KINDS.items() if gate_effects(kind)]
        why = (f"kind '{kind_name}' may only warn at the gate (gate: warn)" if supported else
               f"kind '{kind_name}' is not checked at the gate; kinds that are: "
               f"{', '.join(gated)}")
        raise RuleError(path, rule.line_of("gate"), f"'gate: {value}' is not allowed: {why}")
    return value


def _scope(raw, path: str, line: int) -> Scope:
    if raw is None:
        return Scope()
    if not isinstance(raw, LineDict):
        raise RuleError(path, line, "'scope' must be a mapping with include and/or exclude")
    check_keys(raw, SCOPE_KEYS, path, RuleError)
    values: dict[str, frozenset[str]] = {}
    for part in ("include", "exclude"):
        section = raw.get(part)
        if section is None:
            continue
        if not isinstance(section, LineDict):
            raise RuleError(path, raw.line_of(part),
                            f"'scope.{part}' must be a mapping of departments, items, categories")
        check_keys(section, SCOPE_LISTS, path, RuleError)
        for name, codes in section.items():
            if isinstance(codes, str):
                codes = [codes]
            if not isinstance(codes, list) or not all(isinstance(c, (str, int)) for c in codes):
                raise RuleError(path, section.line_of(name),
                                f"'scope.{part}.{name}' must be a list of codes")
            key = name if part == "include" else f"exclude_{name}"
            values[key] = frozenset(str(c) for c in codes)
    return Scope(**values)


def check_message(template: str, fields: tuple[str, ...], path: str, line: int,
                  max_width: int = DEFAULT_LIMITS.max_format_width) -> None:
    """Only ``{field}`` or ``{field:spec}`` over the kind's fields; no attribute access;
    no width or precision over ``max_width`` (``{duration:>30000000}`` would make every
    alert's message 30 MB)."""
    allowed = set(fields) | set(COMMON_FIELDS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleError(path, line, f"bad message template: {exc}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if conversion or "{" in (spec or "") or not name.isidentifier():
            raise RuleError(path, line, f"message may only use plain {{field}} placeholders, "
                                        f"got {{{name}{'!' + conversion if conversion else ''}}}")
        if name not in allowed:
            raise RuleError(path, line, f"message uses unknown field '{name}'"
                                        f"{did_you_mean(name, allowed)}; fields: "
                                        f"{', '.join(sorted(allowed))}")
        widest = max((int(n) for n in NUMBER.findall(spec or "")), default=0)
        if widest > max_width:
            raise RuleError(path, line, f"message format {{{name}:{(spec or '')[:40]}}} asks for "
                                        f"{widest} characters, more than "
                                        f"limits.max_format_width ({max_width})")


def _variants(raw: LineDict, kind, path: str, limits: Limits
              ) -> tuple[tuple[str, Variant], ...]:
    """The kind's variants (``VARIANTS``: name → (title, message)), each title or message
    replaced where the file's ``variants:`` gives one."""
    defaults: dict[str, tuple[str, str]] = getattr(kind, "VARIANTS", {})
    given = raw.get("variants")
    if given is None:
        given = LineDict(line=raw.line)
    if not isinstance(given, LineDict):
        raise RuleError(path, raw.line_of("variants"), "'variants' must be a mapping of "
                        f"{', '.join(defaults) or '(none for this kind)'} to title and message")
    check_keys(given, set(defaults), path, RuleError)
    out = []
    for name, (title, message) in sorted(defaults.items()):
        entry = given.get(name)
        if entry is None:
            entry = LineDict(line=given.line)
        if not isinstance(entry, LineDict):
            raise RuleError(path, given.line_of(name),
                            f"'variants.{name}' must be a mapping of title and message")
        check_keys(entry, VARIANT_KEYS, path, RuleError)
        text = _text(entry, "message", path, message)
        check_message(text, kind.FIELDS, path, entry.line_of("message"),
                      limits.max_format_width)
        out.append((name, Variant(_text(entry, "title", path, title), text)))
    return tuple(out)


def _rule(raw: LineDict, path: str, limits: Limits) -> Rule:
    check_keys(raw, RULE_KEYS, path, RuleError, required=("id", "kind"))
    kind_name = raw["kind"]
    if kind_name not in KINDS:
        raise RuleError(path, raw.line_of("kind"), f"unknown kind '{kind_name}'"
                        f"{did_you_mean(str(kind_name), KINDS)}; kinds: {', '.join(KINDS)}")
    kind = KINDS[kind_name]
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError(path, raw.line_of("enabled"), f"'enabled' must be true or false, "
                                                      f"got {enabled!r}")
    references = raw.get("references") or []
    if isinstance(references, str):
        references = [references]
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise RuleError(path, raw.line_of("references"), "'references' must be a list of text")
    message = _text(raw, "message", path, kind.DEFAULT_MESSAGE)
    check_message(message, kind.FIELDS, path, raw.line_of("message"), limits.max_format_width)
    return Rule(
        id=_text(raw, "id", path), title=_text(raw, "title", path, kind.TITLE), kind=kind_name,
        params=build_params(kind.Params, raw.get("params"), path, raw.line_of("params")),
        level=_choice(raw, "level", LEVELS, "yellow", path), enabled=enabled,
        scope=_scope(raw.get("scope"), path, raw.line_of("scope")), message=message,
        references=tuple(references), action=_choice(raw, "action", ACTIONS, "alert", path),
        handling_days=_days(raw, "handling_days", path),
        status=_choice(raw, "status", STATUSES, "stable", path),
        gate=_gate(raw, kind_name, path), path=path, line=raw.line,
        variants=_variants(raw, kind, path, limits))


def parse_rule(raw: LineDict, path: str, limits: Limits = DEFAULT_LIMITS) -> Rule:
    """One rule from its mapping in a file (``path`` for the errors), checked."""
    return _rule(raw, path, limits)


def load_rule_file(path: str | Path, errors: list[SourceError] | None = None,
                   limits: Limits = DEFAULT_LIMITS) -> list[Rule]:
    """All rules of one file: a list of rules, or a mapping with a ``rules:`` list. With
    ``errors``, a bad rule's problem is added there and the next rules are still read.
    ``limits``: the bounds on the file (size, YAML aliases, message widths)."""
    where = str(path)
    raw = load_yaml(path, RuleError, limits.yaml)
    if isinstance(raw, LineDict):
        check_keys(raw, {"rules"}, where, RuleError)
        raw = raw.get("rules")
    if raw is None:
        return []
    if not isinstance(raw, LineList):
        raise RuleError(where, getattr(raw, "line", 1), "expected a list of rules")
    rules = []
    for line, entry in zip(raw.item_lines, raw):
        try:
            if not isinstance(entry, LineDict):
                raise RuleError(where, line, "each rule must be a mapping")
            rules.append(_rule(entry, where, limits))
        except RuleError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return rules


def rule_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleError(str(directory), None, "rules directory not found (set rules_dir in "
                                              "config.yaml)")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))


def load_rules(paths: list[str | Path], limits: Limits = DEFAULT_LIMITS) -> list[Rule]:
    """Rules from files and directories; all problems reported together, ids unique."""
    errors: list[RuleError] = []
    rules: list[Rule] = []
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(rule_files(p) if p.is_dir() else [p])
    for f in files:
        try:
            rules.extend(load_rule_file(f, limits=limits))
        except RuleError as exc:
            errors.append(exc)
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            first = seen[rule.id]
            errors.append(RuleError(rule.path, rule.line, f"duplicate rule id '{rule.id}' "
                                                          f"(first at {first.path}:{first.line})"))
        seen.setdefault(rule.id, rule)
    if errors:
        raise SourceErrors(errors)
    return rules
