"""Golden tests for rules (``rules test``), in the spirit of ``promtool test rules``.

A test file names the rule files under test, a small catalog (inline, or a catalog file
beside it), optional calendar overrides, and a list of tests. Each test is a timeline of
cases and their events, one or more evaluation moments, and the alerts expected at each
(kind, subject, level; an empty list asserts that nothing fires)::

    rule_files: [../../rules/step_too_fast.yaml]   # relative to this file
    catalog: catalog.yaml                          # or an inline catalog mapping
    calendar: {extra_holidays: [2025-10-09]}       # optional, as in config.yaml
    tests:
      - name: the seed's 58-second survey
        cases:
          HC-1:
            item: D04-XK-001
            events:
              - accept: 2025-09-30 10:00          # absolute, configured timezone
              - survey: +58s                      # relative to the case's previous event
                actor: u2                         # any event field: actor, recorded, amount …
        activity: [{user: m4, at: 2025-09-30 08:30, action: login}]  # optional log
        at: 2025-10-01 18:00                      # or evaluate: [{at: …, expect: […]}, …]
        expect:
          - {kind: step_too_fast, subject: HC-1, level: yellow}
        gate:                                     # optional: the workflow gate's answers
          - {case: HC-1, event: {review: +1m, actor: u1}, expect: deny}

(``gate:``: see :mod:`.golden_gate`.) Each test runs in its own scratch database through the real pipeline: the catalog is
ingested, the events are written as a JSON Lines file and ingested, and the rules are run
at each moment in turn, storing alerts as ``permit-monitor run --as-of`` would (so an
alert raised at one moment is still there at the next). What is compared at a moment is
every alert stored by then, except suppressed ones.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import RuleError, SourceError, SourceErrors
from ..timeutil import ValueProblem, parse_timestamp
from ..yamlsrc import LineDict, LineList, check_keys, load_yaml
from . import golden_gate

FILE_KEYS = {"rule_files", "catalog", "calendar", "timezone", "tests"}
TEST_KEYS = {"name", "cases", "receipts", "activity", "ratings", "complaints", "at", "expect",
             "evaluate", "gate"}
# the citizens' voice: contract fields, and for complaints the stage times as recorded
VOICE_TIMES = {"ratings": ("rated_at",),
               "complaints": ("received_at", "accepted", "investigated", "handled",
                              "answered")}
ACTIVITY_KEYS = {"user", "at", "action"}
CASE_KEYS = {"item", "department", "actor", "events"}
EVENT_FIELDS = {"actor", "recorded", "amount", "channel", "attachments", "days", "note",
                "event_id", "department"}
EXPECT_KEYS = {"kind", "subject", "level", "rule"}
RELATIVE = re.compile(r"^\+(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class Expected:
    kind: str
    subject: str
    level: str | None = None
    rule: str | None = None

    def matches(self, got: tuple[str, str, str, str]) -> bool:
        rule, kind, subject, level = got
        return (kind, subject) == (self.kind, self.subject) and \
            self.level in (None, level) and self.rule in (None, rule)

    def text(self) -> str:
        return f"{self.kind} {self.subject} {self.level or '(any level)'}" + \
            (f" [{self.rule}]" if self.rule else "")


@dataclass(frozen=True)
class Moment:
    at: datetime
    expected: tuple[Expected, ...]
    line: int


@dataclass(frozen=True)
class GoldenTest:
    name: str
    line: int
    events: tuple[tuple[dict[str, Any], int], ...]  # (contract row, line in the test file)
    receipts: tuple[dict[str, Any], ...]
    moments: tuple[Moment, ...]
    activity: tuple[tuple[str, datetime, str], ...] = ()  # monitoring log: user, at, action
    ratings: tuple[dict[str, Any], ...] = ()     # 好差评 rows (times as ISO text)
    complaints: tuple[dict[str, Any], ...] = ()  # 投诉 rows, with their stage times
    gate: tuple = ()  # the workflow gate's expected answers (golden_gate.GateExpectation)


@dataclass(frozen=True)
class GoldenFile:
    path: str
    rule_files: tuple[Path, ...]
    catalog: Any  # LineDict of the catalog
    catalog_where: str
    tz: ZoneInfo
    extra_holidays: frozenset[date]
    extra_workdays: frozenset[date]
    tests: tuple[GoldenTest, ...]


@dataclass
class MomentResult:
    moment: Moment
    got: list[tuple[str, str, str, str]]
    missing: list[Expected] = field(default_factory=list)
    unexpected: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


@dataclass
class TestResult:
    file: GoldenFile
    test: GoldenTest
    moments: list[MomentResult] = field(default_factory=list)
    error: str | None = None
    gate_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(m.ok for m in self.moments) and not self.gate_failures

    def report(self) -> str:
        """What failed, as a diff of expected (-) against got (+) per moment."""
        where = f"{self.file.path}:{self.test.line}"
        if self.error:
            return f"{where}: test '{self.test.name}': {self.error}"
        lines = list(self.gate_failures)
        for m in self.moments:
            if m.ok:
                continue
            at = m.moment.at.astimezone(self.file.tz).isoformat()
            lines.append(f"{self.file.path}:{m.moment.line}: test '{self.test.name}' as of "
                         f"{at}: expected (-) vs. got (+)")
            lines += [f"  - {e.text()}" for e in m.missing]
            lines += [f"  + {k} {s} {lv} [{r}]" for r, k, s, lv in m.unexpected]
            lines += [f"    {k} {s} {lv} [{r}]" for r, k, s, lv in m.got
                      if (r, k, s, lv) not in m.unexpected]
        return "\n".join(lines) or where


def _error(path: str, line: int | None, message: str) -> RuleError:
    return RuleError(path, line, message)


def _moment_time(value: Any, tz: ZoneInfo, last: datetime | None, where: str,
                 line: int) -> datetime:
    """An absolute time (naive = ``tz``; a date = its start) or ``+58s`` after ``last``."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tz).astimezone(timezone.utc)
    text = str(value).strip()
    match = RELATIVE.match(text)
    if match and text != "+":
        if last is None:
            raise _error(where, line, f"relative time '{text}' needs an earlier event")
        d, h, m, s = (int(x or 0) for x in match.groups())
        return last + timedelta(days=d, hours=h, minutes=m, seconds=s)
    try:
        return parse_timestamp(text if len(text) > 10 else f"{text}T00:00:00", tz)
    except ValueProblem as exc:
        raise _error(where, line, f"{exc}; or relative like +58s, +2m33s, +3d") from None


def _events(case_id: str, spec: LineDict, where: str, tz: ZoneInfo
            ) -> list[tuple[dict[str, Any], int]]:
    check_keys(spec, CASE_KEYS, where, RuleError, required=("item", "events"))
    events = spec["events"]
    if not isinstance(events, LineList):
        raise _error(where, spec.line_of("events"), "'events' must be a list of {step: time}")
    out, last = [], None
    for n, (line, entry) in enumerate(zip(events.item_lines, events), 1):
        if not isinstance(entry, LineDict):
            raise _error(where, line, "each event must be a mapping like {accept: 2025-09-30 10:00}")
        steps = [k for k in entry if k not in EVENT_FIELDS]
        if len(steps) != 1:
            raise _error(where, line, f"an event names exactly one step (its time as value), "
                                      f"got {steps or 'none'}; other keys: "
                                      f"{', '.join(sorted(EVENT_FIELDS))}")
        step = str(steps[0])
        at = last = _moment_time(entry[step], tz, last, where, line)
        row = {"event_id": str(entry.get("event_id", f"{case_id}-{n}")), "case_id": case_id,
               "item_code": str(spec["item"]), "step": step,
               "actor": entry.get("actor", spec.get("actor")), "occurred_at": at.isoformat()}
        if spec.get("department") or entry.get("department"):
            row["department"] = str(entry.get("department") or spec["department"])
        if "recorded" in entry:
            row["recorded_at"] = _moment_time(entry["recorded"], tz, at, where, line).isoformat()
        for key in ("amount", "channel", "attachments", "days", "note"):
            if key in entry:
                value = entry[key]
                row[key] = ";".join(value) if isinstance(value, list) else str(value)
        out.append(({k: v for k, v in row.items() if v is not None}, line))
    return out


def _expected(raw: Any, where: str, line: int) -> tuple[Expected, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, LineList):
        raise _error(where, line, "'expect' must be a list of {kind, subject, level}; "
                                  "[] asserts that nothing fires")
    out = []
    for item_line, e in zip(raw.item_lines, raw):
        if not isinstance(e, LineDict):
            raise _error(where, item_line, "each expected alert is {kind, subject, level}")
        check_keys(e, EXPECT_KEYS, where, RuleError, required=("kind", "subject"))
        out.append(Expected(str(e["kind"]), str(e["subject"]),
                            str(e["level"]) if e.get("level") else None,
                            str(e["rule"]) if e.get("rule") else None))
    return tuple(out)


def _test(raw: LineDict, line: int, where: str, tz: ZoneInfo) -> GoldenTest:
    check_keys(raw, TEST_KEYS, where, RuleError, required=("name",))
    if "cases" not in raw and not ("ratings" in raw or "complaints" in raw):
        raise _error(where, line, "missing required key 'cases' (a test without cases "
                                  "needs ratings or complaints)")
    cases = raw.get("cases", LineDict(line=line))
    if not isinstance(cases, LineDict):
        raise _error(where, raw.line_of("cases"), "'cases' must map case ids to "
                                                  "{item, events}")
    events = []
    for case_id, spec in cases.items():
        if not isinstance(spec, LineDict):
            raise _error(where, cases.line_of(case_id), f"case '{case_id}' must be a mapping")
        events += _events(str(case_id), spec, where, tz)
    last = max((datetime.fromisoformat(r["occurred_at"]) for r, _ in events), default=None)
    if "evaluate" in raw and ("at" in raw or "expect" in raw):
        raise _error(where, raw.line_of("evaluate"), "use either 'at' with 'expect', or "
                                                     "'evaluate', not both")
    specs = raw.get("evaluate") if "evaluate" in raw else \
        LineList([LineDict({"at": raw.get("at"), "expect": raw.get("expect")}, line=line)])
    if not isinstance(specs, list) or not specs:
        raise _error(where, raw.line_of("evaluate"), "'evaluate' must be a list of {at, expect}")
    moments = []
    for spec in specs:
        if not isinstance(spec, LineDict) or spec.get("at") is None or "expect" not in spec:
            raise _error(where, getattr(spec, "line", line), "each evaluation needs 'at' and "
                                                              "'expect' ([] = nothing fires)")
        check_keys(spec, {"at", "expect"}, where, RuleError)
        moments.append(Moment(_moment_time(spec["at"], tz, last, where, spec.line_of("at")),
                              _expected(spec["expect"], where, spec.line_of("expect")),
                              spec.line_of("at") or line))
    receipts = tuple(dict(r) for r in (raw.get("receipts") or []))
    gate = golden_gate.parse(raw.get("gate"), cases, events, where, raw.line_of("gate"), tz,
                             _events)
    return GoldenTest(str(raw["name"]), line, tuple(events), receipts, tuple(moments),
                      _activity(raw.get("activity"), tz, where, raw.line_of("activity")),
                      ratings=_voice(raw, "ratings", tz, where),
                      complaints=_voice(raw, "complaints", tz, where), gate=gate)


def _voice(raw: LineDict, key: str, tz: ZoneInfo, where: str) -> tuple[dict[str, Any], ...]:
    """The test's ratings or complaints: contract rows, times in the test's time zone."""
    items = raw.get(key)
    if items is None:
        return ()
    if not isinstance(items, LineList):
        raise _error(where, raw.line_of(key), f"'{key}' must be a list of rows")
    out = []
    for item_line, row in zip(items.item_lines, items):
        if not isinstance(row, LineDict):
            raise _error(where, item_line, f"each entry of '{key}' is a mapping of fields")
        values = {k: (list(v) if isinstance(v, list) else v) for k, v in row.items()}
        for name in VOICE_TIMES[key]:
            if values.get(name) is not None:
                values[name] = _moment_time(values[name], tz, None, where,
                                            row.line_of(name) or item_line).isoformat()
        out.append(values)
    return tuple(out)


def _activity(raw: Any, tz: ZoneInfo, where: str, line: int | None
              ) -> tuple[tuple[str, datetime, str], ...]:
    """The test's monitoring log: ``[{user: m4, at: 2025-10-13 09:00, action: login}]``."""
    if raw is None:
        return ()
    if not isinstance(raw, LineList):
        raise _error(where, line, "'activity' must be a list of {user, at, action}")
    out = []
    for item_line, a in zip(raw.item_lines, raw):
        if not isinstance(a, LineDict):
            raise _error(where, item_line, "each activity entry is {user, at, action}")
        check_keys(a, ACTIVITY_KEYS, where, RuleError, required=("user", "at", "action"))
        at = _moment_time(a["at"], tz, None, where, a.line_of("at"))
        out.append((str(a["user"]), at, str(a["action"])))
    return tuple(out)


def load_golden(path: str | Path, default_rules: Path | None = None) -> GoldenFile:
    """Parse and check one golden test file; problems are ``path:line: message``."""
    where, base = str(path), Path(path).resolve().parent
    raw = load_yaml(path, RuleError)
    if not isinstance(raw, LineDict):
        raise _error(where, getattr(raw, "line", 1), "expected a mapping with rule_files, "
                                                     "catalog and tests")
    check_keys(raw, FILE_KEYS, where, RuleError, required=("catalog", "tests"))
    files = raw.get("rule_files")
    files = [files] if isinstance(files, str) else files
    if files:
        rule_files = tuple(base / str(f) for f in files)
    elif default_rules is not None:
        rule_files = (default_rules,)
    else:
        raise _error(where, raw.line, "missing 'rule_files' (the rule files under test)")
    tz_name = str(raw.get("timezone", "Asia/Shanghai"))
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _error(where, raw.line_of("timezone"), f"unknown timezone '{tz_name}' "
                                                     "(e.g. Asia/Shanghai)") from None
    catalog, catalog_where = raw["catalog"], where
    if isinstance(catalog, str):
        catalog_where = str(base / catalog)
        catalog = load_yaml(base / catalog, RuleError)
    calendar = raw.get("calendar") or {}
    if isinstance(calendar, LineDict):
        check_keys(calendar, {"extra_holidays", "extra_workdays"}, where, RuleError)
    for key in ("extra_holidays", "extra_workdays"):
        days = calendar.get(key) or [] if isinstance(calendar, dict) else None
        if not isinstance(days, list) or not all(type(d) is date for d in days):
            raise _error(where, raw.line_of("calendar"), f"'calendar.{key}' must be a list "
                                                         "of dates like 2025-10-09")
    tests = raw["tests"]
    if not isinstance(tests, LineList):
        raise _error(where, raw.line_of("tests"), "'tests' must be a list")
    errors, parsed = [], []
    for line, t in zip(tests.item_lines, tests):
        try:
            if not isinstance(t, LineDict):
                raise _error(where, line, "each test must be a mapping with name, cases, at, expect")
            parsed.append(_test(t, line, where, tz))
        except SourceError as exc:
            errors.append(exc)
    if errors:
        raise SourceErrors(errors)
    return GoldenFile(where, rule_files, _fill_catalog(catalog), catalog_where, tz,
                      frozenset(calendar.get("extra_holidays") or ()),
                      frozenset(calendar.get("extra_workdays") or ()), tuple(parsed))


def _fill_catalog(raw: Any) -> Any:
    """Defaults that keep fragments short: an item's name is its code, its category
    ``license``; departments named by items but not listed are added."""
    if not isinstance(raw, LineDict):
        return raw
    items = raw.get("items") or []
    for item in items:
        if isinstance(item, LineDict):
            item.setdefault("name", item.get("code"))
            item.setdefault("category", "license")
    listed = {d.get("code") for d in raw.get("departments") or [] if isinstance(d, dict)}
    extra = sorted({str(i.get("department")) for i in items if isinstance(i, dict)
                    and i.get("department") and i.get("department") not in listed})
    if extra:
        departments = LineList(list(raw.get("departments") or []) +
                               [LineDict({"code": c, "name": c}, line=raw.line) for c in extra])
        departments.line = raw.line
        departments.item_lines = list(getattr(raw.get("departments"), "item_lines", [])) + \
            [raw.line] * len(extra)
        raw["departments"] = departments
    return raw


Scratch = Callable[[Path], AbstractContextManager[str]]


def run_test(golden: GoldenFile, test: GoldenTest, scratch: Scratch) -> TestResult:
    """Run one test in a fresh database from ``scratch(directory)`` (a URL per block)."""
    from ..catalog import apply_catalog, parse_catalog
    from ..config import Config
    from ..db import open_store
    from ..engine import evaluate
    from ..rules.loader import load_rules

    result = TestResult(golden, test)
    rules = load_rules(list(golden.rule_files))
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp, scratch(Path(tmp)) as url:
        config = Config(path=None, base_dir=Path(tmp), timezone=golden.tz.key,
                        extra_holidays=golden.extra_holidays,
                        extra_workdays=golden.extra_workdays, parallel_ingest=False)
        engine = open_store(url)
        try:
            apply_catalog(engine, parse_catalog(golden.catalog, golden.catalog_where))
            result.error = _load_events(engine, config, golden, test, Path(tmp))
            if result.error:
                return result
            result.gate_failures = golden_gate.run(engine, config, rules, test.gate,
                                                   golden.path, test.name)
            for moment in test.moments:
                outcomes = evaluate(engine, config, moment.at, rules=rules)
                failed = [f"{o.rule.id}: {o.error}" for o in outcomes if o.error]
                if failed:
                    result.error = "rule failed: " + "; ".join(failed)
                    return result
                result.moments.append(_compare(moment, _stored(engine)))
        finally:
            engine.dispose()
    return result


def _load_events(engine, config, golden: GoldenFile, test: GoldenTest, tmp: Path) -> str | None:
    """Ingest the test's events (receipts, activity); a quarantined row is the test's error."""
    from ..ingest import ingest_activity, ingest_events, ingest_receipts
    from ..ingest.quarantine import list_quarantine

    now = test.moments[0].at  # the ingestion timestamp: the test's own clock, not the wall's
    if test.events:
        path = tmp / "events.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                for r, _ in test.events), encoding="utf-8")
        list(ingest_events(engine, config, [str(path)], now))
    if test.receipts:
        receipts = tmp / "receipts.csv"
        receipts.write_text("department,period,amount\n" + "".join(
            f"{r['department']},{r['period']},{r['amount']}\n" for r in test.receipts),
            encoding="utf-8")
        list(ingest_receipts(engine, config, [str(receipts)], now))
    if test.activity:
        activity = tmp / "activity.csv"
        activity.write_text("user_id,at,action\n" + "".join(
            f"{user},{at.isoformat()},{action}\n" for user, at, action in test.activity),
            encoding="utf-8")
        list(ingest_activity(engine, config, [str(activity)], now))
    for key, rows in (("ratings", test.ratings), ("complaints", test.complaints)):
        if rows:
            _load_voice(engine, config, key, rows, tmp, now)
    for q in list_quarantine(engine):
        line = test.events[q.line - 1][1] if q.kind == "events" else test.line
        return f"{golden.path}:{line}: event not accepted: {q.reason}: {q.detail}"
    return None


def _load_voice(engine, config, key: str, rows: tuple[dict[str, Any], ...], tmp: Path,
                now: datetime) -> None:
    """Ingest the test's ratings or complaints; a complaint's stage times are written as
    the department would have recorded them (``complaints advance``)."""
    from sqlalchemy import update

    from ..ingest import ingest_voice
    from ..models import Complaint

    path = tmp / f"{key}.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items()
                                        if k not in VOICE_TIMES[key][1:]}, ensure_ascii=False)
                            + "\n" for r in rows), encoding="utf-8")
    list(ingest_voice(key, engine, config, [str(path)], now))
    if key == "complaints":
        with engine.begin() as conn:
            for r in rows:
                stages = {f"{s}_at": datetime.fromisoformat(r[s]) for s in VOICE_TIMES[key][1:]
                          if r.get(s)}
                if stages:
                    conn.execute(update(Complaint).where(
                        Complaint.complaint_id == str(r["complaint_id"])).values(**stages))


def _stored(engine) -> list[tuple[str, str, str, str]]:
    from sqlalchemy import select

    from ..models import Alert

    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(
            select(Alert.rule_id, Alert.kind, Alert.subject, Alert.level)
            .where(Alert.status != "suppressed")))


def _compare(moment: Moment, got: list[tuple[str, str, str, str]]) -> MomentResult:
    result, left = MomentResult(moment, got), list(got)
    for e in moment.expected:
        hit = next((g for g in left if e.matches(g)), None)
        if hit is None:
            result.missing.append(e)
        else:
            left.remove(hit)
    result.unexpected = left
    return result


def run_file(path: str | Path, scratch: Scratch, default_rules: Path | None = None
             ) -> list[TestResult]:
    golden = load_golden(path, default_rules)
    return [run_test(golden, t, scratch) for t in golden.tests]


__all__ = ["GoldenFile", "GoldenTest", "TestResult", "load_golden", "run_file", "run_test"]
