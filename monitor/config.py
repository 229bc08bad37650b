"""config.yaml: every setting declared once (name, default, type, help).

The same table validates the file, supplies defaults and documents the settings
(``permit-monitor settings`` prints it, and a test checks the README lists each one).
The result is a frozen :class:`Config`; nothing mutates it later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendar import WorkCalendar
from .crontab import cron_trigger
from .errors import ConfigError, did_you_mean
from .yamlsrc import LineDict, check_keys, load_yaml

DEFAULT_CONFIG_NAME = "config.yaml"
DEFAULT_DB_NAME = "monitor.db"
DATABASE_URL_ENV = "MONITOR_DATABASE_URL"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    type: type
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", None, str,
            "SQLAlchemy URL of the store. Unset: SQLite file monitor.db beside config.yaml. "
            "Overridden by $MONITOR_DATABASE_URL and by --db."),
    Setting("timezone", "Asia/Shanghai", str,
            "IANA zone for naive timestamps, display and working-day maths (storage is UTC)."),
    Setting("rules_dir", "rules", str, "Directory of YAML rule files, relative to config.yaml "
            "(unset: ./rules if present, else the shipped rules)."),
    Setting("batch_size", 5000, int, "Rows per ingest transaction (memory stays flat)."),
    Setting("parallel_ingest", True, bool,
            "Read and validate big event files in a second process while the first one "
            "writes (needs a second CPU; false: one process)."),
    Setting("handling_days", 3, int,
            "Working days a tier-1 monitor has to resolve a new alert (and a supervision "
            "order's deadline); a rule's own handling_days wins."),
    Setting("red_to_tier2", False, bool,
            "A red alert goes to tier 2 (the county office) at once, with a supervision "
            "order, instead of after tier 1's deadline."),
    Setting("reminder_days", 1, int,
            "While an alert under a supervision order is past its deadline, remind its "
            "monitors every this many working days (not at every run)."),
    Setting("notify", {}, dict,
            "Delivery of notifications: sinks, channels, retries; keys in the 'notify' "
            "table below."),
    Setting("mapping", {}, dict,
            "How XES attributes map to the event contract; keys in the 'mapping' table below."),
    Setting("calendar", {}, dict,
            "Working-day overrides: extra_holidays and extra_workdays, lists of dates "
            "(local arrangements, or a year chinese-calendar does not know yet)."),
    # --- issue 6: reports and scorecards ---
    Setting("language", "zh", str,
            "Language of reports and scorecards: zh (Chinese, the default) or en."),
    Setting("scores", {}, dict,
            "Scorecard (绩效考评) weights: theme points and deductions; keys in the "
            "'scores' table below."),
    # --- issue 5: scheduled and cron-driven audits ---
    Setting("inbox", {}, dict,
            "Drop directory ingested by nightly and serve; keys in the 'inbox' table below."),
    Setting("lease_seconds", 120, int,
            "Lifetime of the database lock a run holds (renewed while it runs); a killed "
            "run's lock expires this long after its last renewal."),
    Setting("lease_wait_seconds", 60, int,
            "How long a run waits for another run to finish before giving up with an error "
            "(0: give up at once)."),
    Setting("catch_up_max_slots", 31, int,
            "After downtime, nightly and the daemon's evaluate/nightly jobs evaluate as of each "
            "scheduled slot missed since the last successful run, then as of now; at most this "
            "many slots (the most recent; older ones are covered by the oldest of them). "
            "0: evaluate only as of now."),
    Setting("schedule", {}, dict,
            "The serve daemon's jobs and cron expressions; keys in the 'schedule' table below."),
    Setting("sources", {}, dict,
            "Source databases for `ingest pull`: name → {url_env or url, query, watermark}; "
            "see the 'sources' table below."),
)

CALENDAR_KEYS = ("extra_holidays", "extra_workdays")
CHANNELS = ("sms", "email", "workflow")

# The notify section, declared the same way.
NOTIFY_SETTINGS: tuple[Setting, ...] = (
    Setting("sinks", {"log": {"type": "log"}}, dict,
            "Named sinks: name → {type: log | file | webhook | smtp, and the type's options}."),
    Setting("channels", {"sms": "log"}, dict,
            "Channel (sms, email, workflow) → sink name: how each kind of message is "
            "delivered; email: the same notices as the SMS, to users with an e-mail address; "
            "workflow: holds and releases of cases, for the workflow system."),
    Setting("max_attempts", 8, int,
            "Delivery attempts before a message is marked failed (it is kept, with its error)."),
    Setting("backoff_seconds", 60, int, "Wait before the first retry; doubles each attempt."),
    Setting("backoff_max_seconds", 3600, int, "Longest wait between two attempts."),
)


@dataclass(frozen=True)
class SinkSpec:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class NotifyConfig:
    sinks: Mapping[str, SinkSpec] = field(
        default_factory=lambda: MappingProxyType({"log": SinkSpec("log", "log")}))
    channels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({"sms": "log"}))
    max_attempts: int = 8
    backoff_seconds: int = 60
    backoff_max_seconds: int = 3600

# The XES mapping section, declared the same way.
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
    case_id: str = "case:concept:name"
    step: str = "concept:name"
    actor: str = "org:resource"
    occurred_at: str = "time:timestamp"
    event_id: str | None = None
    item_code: str | None = None
    department: str | None = None
    steps: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lifecycle: tuple[str, ...] = ("complete",)


# --- issue 6: the scores section (绩效考评), declared the same way.
SCORE_SETTINGS: tuple[Setting, ...] = (
    Setting("themes", {"regular": 40, "timeliness": 30, "fees": 20, "supervision": 10}, dict,
            "Points each theme starts with (regular handling, timeliness, fees, supervision "
            "response); they add up to the total, 100 by default."),
    Setting("kind_themes", {"overdue": "timeliness", "unpaid_fee": "fees",
                            "fee_waiver": "fees", "fee_reconciliation": "fees",
                            "inactive_monitor": "supervision"}, dict,
            "Rule kind → theme its findings are deducted from; other kinds: regular."),
    Setting("warning", 0.5, float, "Points deducted per warning (临期预警) finding."),
    Setting("yellow", 2.0, float, "Points deducted per yellow-card finding."),
    Setting("red", 5.0, float, "Points deducted per red-card finding."),
    Setting("unresolved", 1.0, float,
            "Points deducted (supervision response) per alert of the period still open."),
    Setting("escalated", 2.0, float,
            "Points deducted (supervision response) per alert escalated to tier 2."),
    Setting("failed_spot_check", 2.0, float,
            "Points deducted (regular handling) per failed spot check (抽检)."),
)
THEMES = ("regular", "timeliness", "fees", "supervision")


@dataclass(frozen=True)
class ScoreWeights:
    themes: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        dict(SCORE_SETTINGS[0].default)))
    kind_themes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        dict(SCORE_SETTINGS[1].default)))
    warning: float = 0.5
    yellow: float = 2.0
    red: float = 5.0
    unresolved: float = 1.0
    escalated: float = 2.0
    failed_spot_check: float = 2.0


def _scores(raw: Any, where: str) -> ScoreWeights:
    if not isinstance(raw, LineDict):
        raise ConfigError(where, getattr(raw, "line", None), "'scores' must be a mapping")
    check_keys(raw, {s.name for s in SCORE_SETTINGS}, where, ConfigError)
    values: dict[str, Any] = {}
    for s in SCORE_SETTINGS:
        value = raw.get(s.name)
        if value is None:
            values[s.name] = s.default
        elif s.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(where, raw.line_of(s.name),
                                  f"'scores.{s.name}' must be a number of points, at least 0")
            values[s.name] = float(value)
        elif not isinstance(value, dict):
            raise ConfigError(where, raw.line_of(s.name), f"'scores.{s.name}' must be a mapping")
        else:
            values[s.name] = value
    themes = dict(values["themes"])
    for theme, points in themes.items():
        if theme not in THEMES:
            raise ConfigError(where, _line(values["themes"], theme),
                              f"unknown theme '{theme}'{did_you_mean(str(theme), THEMES)}; "
                              f"themes: {', '.join(THEMES)}")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise ConfigError(where, _line(values["themes"], theme),
                              f"'scores.themes.{theme}' must be a number of points")
    for kind, theme in values["kind_themes"].items():
        if theme not in THEMES:
            raise ConfigError(where, _line(values["kind_themes"], kind),
                              f"kind '{kind}': unknown theme '{theme}'"
                              f"{did_you_mean(str(theme), THEMES)}; themes: {', '.join(THEMES)}")
    values["themes"] = MappingProxyType({t: float(themes.get(t, 0)) for t in THEMES})
    values["kind_themes"] = MappingProxyType({str(k): str(v)
                                              for k, v in values["kind_themes"].items()})
    return ScoreWeights(**values)


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    database_url: str | None = None
    timezone: str = "Asia/Shanghai"
    rules_dir: Path = Path("rules")
    batch_size: int = 5000
    parallel_ingest: bool = True
    handling_days: int = 3
    red_to_tier2: bool = False
    reminder_days: int = 1
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    mapping: XesMapping = field(default_factory=XesMapping)
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    # --- issue 6: reports and scorecards
    language: str = "zh"
    scores: ScoreWeights = field(default_factory=ScoreWeights)
    # issue 5: scheduled and cron-driven audits
    inbox: InboxConfig | None = None
    lease_seconds: int = 120
    lease_wait_seconds: int = 60
    catch_up_max_slots: int = 31
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig())
    sources: Mapping[str, PullSource] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def calendar(self) -> WorkCalendar:
        """The working-day calendar: official arrangements plus this file's overrides."""
        return WorkCalendar(self.extra_holidays, self.extra_workdays)


def _typed(value: Any, setting: Setting, where: str, line: int) -> Any:
    if value is None:
        return setting.default
    expected = setting.type
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(where, line, f"'{setting.name}' must be {expected.__name__}, "
                                        f"got {type(value).__name__} {value!r}")
    return value


def _read_section(raw: LineDict, settings: tuple[Setting, ...], where: str) -> dict[str, Any]:
    check_keys(raw, {s.name for s in settings}, where, ConfigError)
    return {s.name: _typed(raw.get(s.name), s, where, raw.line_of(s.name)) for s in settings}


def load_config(path: str | Path | None) -> Config:
    """Load config.yaml; ``None`` means ./config.yaml if present, else all defaults."""
    explicit = path is not None
    path = Path(path) if explicit else Path(DEFAULT_CONFIG_NAME)
    if not path.exists():
        if explicit:
            raise ConfigError(str(path), None, "config file not found")
        base = Path.cwd().resolve()
        return Config(path=None, base_dir=base, rules_dir=_rules_dir(base, None))
    raw = load_yaml(path, ConfigError)
    where = str(path)
    if raw is None:
        raw = LineDict()
    if not isinstance(raw, LineDict):
        raise ConfigError(where, getattr(raw, "line", 1), "expected a mapping of settings")
    values = _read_section(raw, SETTINGS, where)
    base_dir = path.resolve().parent

    mapping_raw = raw.get("mapping") or LineDict()
    mapping = _read_section(mapping_raw, MAPPING_SETTINGS, where)
    steps = {str(k): str(v) for k, v in (mapping["steps"] or {}).items()}
    mapping["steps"] = MappingProxyType(steps)
    mapping["lifecycle"] = tuple(str(v) for v in mapping["lifecycle"])

    calendar = values["calendar"] or LineDict()
    check_keys(calendar, set(CALENDAR_KEYS), where, ConfigError)
    dates = {key: _dates(calendar, key, where) for key in CALENDAR_KEYS}
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(where, raw.line_of("timezone"),
                          f"unknown timezone '{values['timezone']}' (e.g. Asia/Shanghai)") from None
    for name in ("batch_size", "handling_days", "reminder_days"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'{name}' must be at least 1")
    return Config(
        path=path,
        base_dir=base_dir,
        database_url=values["database_url"],
        timezone=values["timezone"],
        rules_dir=_rules_dir(base_dir, raw.get("rules_dir")),
        batch_size=values["batch_size"],
        parallel_ingest=values["parallel_ingest"],
        handling_days=values["handling_days"],
        red_to_tier2=values["red_to_tier2"],
        reminder_days=values["reminder_days"],
        notify=_notify(raw.get("notify") or LineDict(), where),
        mapping=XesMapping(**mapping),
        **dates,
        **_issue6(raw, values, where),
        **scheduling(values, raw, where, base_dir),
    )


def _issue6(raw: LineDict, values: dict[str, Any], where: str) -> dict[str, Any]:
    """language and scores (issue 6), validated."""
    from .report.labels import LANGUAGES

    if values["language"] not in LANGUAGES:
        raise ConfigError(where, raw.line_of("language"),
                          f"unknown language '{values['language']}'"
                          f"{did_you_mean(values['language'], LANGUAGES)}; one of "
                          f"{', '.join(LANGUAGES)}")
    return {"language": values["language"],
            "scores": _scores(raw.get("scores") or LineDict(), where)}


def _notify(raw: LineDict, where: str) -> NotifyConfig:
    from .sinks import SINK_TYPES

    if not isinstance(raw, LineDict):
        raise ConfigError(where, getattr(raw, "line", None), "'notify' must be a mapping")
    values = _read_section(raw, NOTIFY_SETTINGS, where)
    sinks = {"log": SinkSpec("log", "log")}  # always there; a sink of that name replaces it
    for name, spec in values["sinks"].items():
        line = _line(values["sinks"], name)
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(where, line, f"sink '{name}' must be a mapping with a type "
                                           f"({', '.join(SINK_TYPES)})")
        kind = SINK_TYPES.get(spec["type"])
        if kind is None:
            raise ConfigError(where, _line(spec, "type"), f"sink '{name}': unknown type "
                              f"'{spec['type']}'{did_you_mean(str(spec['type']), SINK_TYPES)}; "
                              f"types: {', '.join(SINK_TYPES)}")
        options = {k: v for k, v in spec.items() if k != "type"}
        for key in options:
            if key not in kind.OPTIONS:
                raise ConfigError(where, _line(spec, key), f"sink '{name}': unknown option "
                                  f"'{key}'{did_you_mean(str(key), kind.OPTIONS)}; type "
                                  f"{kind.TYPE} takes {', '.join(kind.OPTIONS) or 'no options'}")
        for key, (typ, required, _) in kind.OPTIONS.items():
            if required and options.get(key) in (None, ""):
                raise ConfigError(where, line, f"sink '{name}': missing required option '{key}'")
            if key in options and not isinstance(options[key], typ):
                raise ConfigError(where, _line(spec, key), f"sink '{name}': '{key}' must be "
                                                           f"{typ.__name__}")
        problem = kind.check(options)
        if problem:
            raise ConfigError(where, _line(spec, problem[0]) or line,
                              f"sink '{name}': {problem[1]}")
        sinks[str(name)] = SinkSpec(str(name), spec["type"], MappingProxyType(options))
    channels = {}
    for channel, sink in values["channels"].items():
        line = _line(values["channels"], channel)
        if channel not in CHANNELS:
            raise ConfigError(where, line, f"unknown channel '{channel}'"
                                           f"{did_you_mean(str(channel), CHANNELS)}; channels: "
                                           f"{', '.join(CHANNELS)}")
        if sink not in sinks:
            raise ConfigError(where, line, f"channel '{channel}': no sink named '{sink}'"
                                           f"{did_you_mean(str(sink), sinks)}; define it under "
                                           "notify.sinks")
        channels[channel] = str(sink)
    for name in ("max_attempts", "backoff_seconds", "backoff_max_seconds"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'notify.{name}' must be at least 1")
    return NotifyConfig(MappingProxyType(sinks), MappingProxyType(channels),
                        values["max_attempts"], values["backoff_seconds"],
                        values["backoff_max_seconds"])


def _line(mapping: Any, key: str) -> int | None:
    return mapping.line_of(key) if isinstance(mapping, LineDict) else None


def _rules_dir(base_dir: Path, configured: str | None) -> Path:
    """The configured folder; unset, ./rules beside the config, else the shipped rules."""
    if configured:
        return base_dir / configured
    local = base_dir / "rules"
    if local.is_dir():
        return local
    from .rules import SHIPPED_RULES

    return SHIPPED_RULES


def _dates(section: LineDict, key: str, where: str) -> frozenset[date]:
    values = section.get(key) or []
    if not isinstance(values, list) or not all(type(v) is date for v in values):
        raise ConfigError(where, section.line_of(key),
                          f"'calendar.{key}' must be a list of dates like 2027-10-01")
    return frozenset(values)


def resolve_database_url(config: Config, cli_url: str | None = None,
                         environ: Mapping[str, str] | None = None) -> str:
    """Precedence, lowest first: monitor.db beside the config → config → env → --db."""
    environ = os.environ if environ is None else environ
    if cli_url:
        return cli_url
    if environ.get(DATABASE_URL_ENV):
        return environ[DATABASE_URL_ENV]
    if config.database_url:
        return config.database_url
    return f"sqlite:///{config.base_dir / DEFAULT_DB_NAME}"


# --- issue 5: scheduled and cron-driven audits (inbox, lease, schedule, sources) ---

INBOX_SETTINGS: tuple[Setting, ...] = (
    Setting("dir", None, str, "The drop directory, relative to config.yaml (unset: no inbox). "
            "Ingested files move to its done/, rejected ones to failed/ with a .reason file."),
    Setting("settle_seconds", 5, int,
            "A file is picked up only once unchanged for this long (a copy still being "
            "written is left for the next pass); names starting with '.' or ending in "
            ".part/.tmp are never picked up: write under such a name, then rename."),
    Setting("catalog", ["catalog*.yaml", "catalog*.yml"], list, "Name patterns of catalog files."),
    Setting("receipts", ["receipts*.csv", "receipts*.csv.gz"], list,
            "Name patterns of fiscal receipt files."),
    Setting("activity", ["activity*.csv", "activity*.csv.gz"], list,
            "Name patterns of monitoring-log files (user_id, at, action)."),
    Setting("events", ["*.csv", "*.jsonl", "*.ndjson", "*.xes", "*.csv.gz", "*.jsonl.gz",
                       "*.xes.gz"], list,
            "Name patterns of event files (after the catalog, receipts and activity patterns)."),
)

JOBS = ("inbox", "pull", "evaluate", "escalate", "nightly", "flush")
SCHEDULE_SETTINGS: tuple[Setting, ...] = (
    Setting("jobs", {"inbox": "*/10 * * * *", "pull": "*/10 * * * *",
                     "evaluate": "0 8-18 * * mon-fri", "escalate": "*/30 8-18 * * mon-fri",
                     "nightly": "0 2 * * *", "flush": "* * * * *"}, dict,
            "Job → cron expression (minute hour day month weekday; a sixth field in front "
            "gives seconds), in the configured timezone; null or 'off' disables a job. "
            f"Jobs: {', '.join(JOBS)}."),
    Setting("misfire_grace_seconds", 600, int,
            "A scheduled run still starts this late (the daemon was busy or down); later "
            "than that it is recorded as missed and raises an operational alert."),
)

SOURCE_KEYS = ("url", "url_env", "query", "watermark", "start")


@dataclass(frozen=True)
class InboxConfig:
    dir: Path
    settle_seconds: int = 5
    catalog: tuple[str, ...] = ("catalog*.yaml", "catalog*.yml")
    receipts: tuple[str, ...] = ("receipts*.csv", "receipts*.csv.gz")
    activity: tuple[str, ...] = ("activity*.csv", "activity*.csv.gz")
    events: tuple[str, ...] = ("*.csv", "*.jsonl", "*.ndjson", "*.xes", "*.csv.gz")


@dataclass(frozen=True)
class ScheduleConfig:
    jobs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        dict(SCHEDULE_SETTINGS[0].default)))
    misfire_grace_seconds: int = 600


@dataclass(frozen=True)
class PullSource:
    """A source database read by ``ingest pull``: rows past the watermark, in the contract."""

    name: str
    query: str
    watermark: str
    url: str | None = None
    url_env: str | None = None
    start: str | None = None  # the watermark before the first pull (unset: everything)

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        if self.url_env:
            if not environ.get(self.url_env):
                raise ConfigError("config.yaml", None, f"source '{self.name}': environment "
                                  f"variable {self.url_env} (url_env) is not set")
            return environ[self.url_env]
        return self.url or ""


def scheduling(values: dict[str, Any], raw: LineDict, where: str, base_dir: Path) -> dict:
    """The issue-5 settings of a config file, validated."""
    for name in ("lease_seconds",):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'{name}' must be at least 1")
    for name in ("lease_wait_seconds", "catch_up_max_slots"):
        if values[name] < 0:
            raise ConfigError(where, raw.line_of(name), f"'{name}' must be 0 or more")
    return {"inbox": _inbox(values["inbox"] or LineDict(), where, base_dir),
            "lease_seconds": values["lease_seconds"],
            "lease_wait_seconds": values["lease_wait_seconds"],
            "catch_up_max_slots": values["catch_up_max_slots"],
            "schedule": _schedule(values["schedule"] or LineDict(), where),
            "sources": _sources(values["sources"] or LineDict(), where)}


def _section(raw: Any, name: str, where: str) -> LineDict:
    if not isinstance(raw, LineDict):
        raise ConfigError(where, getattr(raw, "line", None), f"'{name}' must be a mapping")
    return raw


def _inbox(raw: Any, where: str, base_dir: Path) -> InboxConfig | None:
    values = _read_section(_section(raw, "inbox", where), INBOX_SETTINGS, where)
    if not values["dir"]:
        return None
    for key in ("catalog", "receipts", "activity", "events"):
        if not all(isinstance(p, str) for p in values[key]):
            raise ConfigError(where, raw.line_of(key), f"'inbox.{key}' must be a list of "
                                                       "name patterns like '*.csv'")
    return InboxConfig(dir=base_dir / values["dir"], settle_seconds=values["settle_seconds"],
                       catalog=tuple(values["catalog"]), receipts=tuple(values["receipts"]),
                       activity=tuple(values["activity"]), events=tuple(values["events"]))


def _schedule(raw: Any, where: str) -> ScheduleConfig:
    values = _read_section(_section(raw, "schedule", where), SCHEDULE_SETTINGS, where)
    jobs = dict(SCHEDULE_SETTINGS[0].default)
    given = values["jobs"] if isinstance(values["jobs"], LineDict) else LineDict()
    for job, expr in given.items():
        if job not in JOBS:
            raise ConfigError(where, given.line_of(job), f"unknown job '{job}'"
                              f"{did_you_mean(str(job), JOBS)}; jobs: {', '.join(JOBS)}")
        if expr in (None, False, "off"):
            jobs[job] = "off"
            continue
        try:
            cron_trigger(str(expr), "UTC")
        except ValueError as exc:
            raise ConfigError(where, given.line_of(job),
                              f"job '{job}': bad cron expression '{expr}': {exc}") from None
        jobs[job] = str(expr)
    if values["misfire_grace_seconds"] < 1:
        raise ConfigError(where, raw.line_of("misfire_grace_seconds"),
                          "'schedule.misfire_grace_seconds' must be at least 1")
    return ScheduleConfig(MappingProxyType(jobs), values["misfire_grace_seconds"])


def _sources(raw: Any, where: str) -> Mapping[str, PullSource]:
    out = {}
    for name, spec in _section(raw, "sources", where).items():
        line = raw.line_of(name)
        if not isinstance(spec, LineDict):
            raise ConfigError(where, line, f"source '{name}' must be a mapping with url_env "
                                           "(or url), query and watermark")
        check_keys(spec, set(SOURCE_KEYS), where, ConfigError, required=("query", "watermark"))
        if not (spec.get("url") or spec.get("url_env")):
            raise ConfigError(where, line, f"source '{name}': give url_env (the name of an "
                                           "environment variable holding the URL) or url")
        for key in SOURCE_KEYS:
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise ConfigError(where, spec.line_of(key),
                                  f"source '{name}': '{key}' must be text")
        if ":" in str(spec.get("url") or "").partition("@")[0].partition("//")[2]:
            raise ConfigError(where, spec.line_of("url"), f"source '{name}': a password does "
                              "not belong in config.yaml; put the URL in an environment "
                              "variable and name it with url_env")
        out[str(name)] = PullSource(str(name), spec["query"], spec["watermark"],
                                    spec.get("url"), spec.get("url_env"), spec.get("start"))
    return MappingProxyType(out)
