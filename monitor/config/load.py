"""config.yaml as a whole: its top-level settings, the frozen :class:`Config` it loads
into, and where the database is (:func:`resolve_database_url`).

Sections with settings of their own are read by the module named after what they
configure (:mod:`.notify`, :mod:`.xes`, :mod:`.reports`, :mod:`.schedule`,
:mod:`.sources`, :mod:`.web`); this one checks the store, the clock and the calendar settings and puts
the sections together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import regions
from ..calendar import WorkCalendar, check_country
from ..errors import ConfigError
from ..masking import register_url
from ..yamlsrc import LineDict, check_keys, load_yaml
from .audit import AuditConfig, load_audit
from .encoding import EncodingProblem, check_encoding
from .limits import Limits, load_limits
from .notify import NotifyConfig, load_notify
from .regional import RegionConfig, load_regions
from .reports import ScoreWeights, load_language, load_scores
from .schedule import InboxConfig, ScheduleConfig, load_unattended
from .settings import Setting, declared, read_section
from .sources import PullSource, load_sources
from .gate import GateConfig, load_gate
from .web import WebConfig, load_web
from .mappings import EventMapping, load_mappings
from .xes import XesMapping, load_mapping

DEFAULT_CONFIG_NAME = "config.yaml"
DEFAULT_DB_NAME = "monitor.db"
DATABASE_URL_ENV = "MONITOR_DATABASE_URL"


def _shipped_rules() -> Path:
    """The rule files shipped with permit-monitor: in an installed wheel, the package's
    shipped_rules folder (setup.py copies the repository's rules/ there); in a checkout
    (editable install, tests), the repository's rules/ folder itself."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "shipped_rules"
    return packaged if packaged.is_dir() else package.parent / "rules"


SHIPPED_RULES = _shipped_rules()

SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", None, str,
            "SQLAlchemy URL of the store. Unset: SQLite file monitor.db beside config.yaml. "
            "Overridden by $MONITOR_DATABASE_URL and by --db."),
    Setting("region", "000000", str,
            "This deployment's county: its administrative division code (行政区划代码, "
            "GB/T 2260, six digits, e.g. 330102), stamped on every record it ingests and "
            "raises; a store of several counties ingests the others' files with `ingest … "
            "--region CODE`. 000000: not yet named."),
    Setting("region_name", "", str,
            "The name of `region` (西湖区), shown beside its code in reports; set at start "
            "into the `regions` table, on the trail when it changes (`regions load` names "
            "other counties). Empty: the code is shown bare."),
    Setting("timezone", "Asia/Shanghai", str,
            "IANA zone for naive timestamps, display and working-day maths (storage is UTC)."),
    Setting("rules_dir", "rules", str, "Directory of YAML rule files, relative to config.yaml "
            "(unset: ./rules if present, else the shipped rules)."),
    Setting("encoding", "auto", str,
            "Text encoding of CSV and JSON Lines input (the inbox of nightly and serve, and "
            "every ingest command unless --encoding is given): auto reads a file as UTF-8 "
            "(with or without BOM) if all of it decodes, else as GB18030 (covers GBK, what "
            "Chinese Excel saves); or a Python codec name (gb18030, big5, …)."),
    Setting("batch_size", 5000, int, "Rows per ingest transaction (memory stays flat)."),
    Setting("parallel_ingest", True, bool,
            "Read and validate big event files in a second process while the first one "
            "writes (needs a second CPU; false: one process)."),
    Setting("ingest_jobs", 0, int,
            "Processes that read, map and validate an uncompressed XES file at once, each "
            "a part of it, while one more writes in file order (with parallel_ingest); 1: "
            "one reads the whole file; 0: one per CPU but one (the writer's)."),
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
    Setting("mappings", {}, dict,
            "Named declarative mappings of other systems' exports (CSV, XLSX, JSON Lines, "
            "XES) to the event contract, for `ingest events --mapping NAME`; see "
            "docs/mappings.md."),
    Setting("flood_percent", 20, int,
            "`run` and `rules backtest` warn when a rule flags more than this percentage of "
            "the cases in its scope (a flood: the office's practice, not misconduct), "
            "pointing to `rules calibrate`."),
    Setting("stale_days", 180, int,
            "An accepted case neither decided nor ended and silent (no event) for more than "
            "this many calendar days is stale: the data-quality rule reports it, and "
            "`overdue` leaves it out rather than keep it red for ever (an alert already "
            "raised on it stays until someone disposes of it)."),
    Setting("calendar", {}, dict,
            "Working days: country (cn, the default, from chinese-calendar with its 调休 "
            "make-up days; or a country of the holidays package: NL, IT, DE-BY …) and "
            "overrides extra_holidays and extra_workdays, lists of dates (local "
            "arrangements, or a year the package does not know yet)."),
    Setting("regions", {}, dict,
            "A store of several counties: each county's own calendar, rule overrides and "
            "delivery channels, code → {calendar, rules_dir, channels}; keys in the "
            "'regions' table below "
            "(docs/regions.md)."),
    Setting("language", "zh", str,
            "Language of reports, scorecards and the control center (the alert page's "
            "checks too): zh (Chinese, the default) or en."),
    Setting("scores", {}, dict,
            "Scorecard (绩效考评) weights: theme points and deductions; keys in the "
            "'scores' table below."),
    Setting("inbox", {}, dict,
            "Drop directory ingested by nightly and serve; keys in the 'inbox' table below."),
    Setting("lease_seconds", 120, int,
            "Lifetime of the database lock a run holds (renewed while it runs); a killed "
            "run's lock expires this long after its last renewal."),
    Setting("lease_wait_seconds", 60, int,
            "How long a run waits for another run to finish before giving up with an error "
            "(0: give up at once)."),
    Setting("evaluate_jobs", 1, int,
            "Processes that evaluate a store of several counties, one county each at a "
            "time (`run --jobs` for one run; nightly and the daemon's evaluate jobs use "
            "this). 1: one process; a store of one county always evaluates in one. On "
            "SQLite the counties' writes still take turns (one writer)."),
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
    Setting("web", {}, dict,
            "Sign-in and pages of `permit-monitor web`: idle timeout, lockout, page size; "
            "keys in the 'web' table below."),
    Setting("limits", {}, dict,
            "Limits on hostile or broken input (timestamps, field sizes, YAML, message "
            "formats, file modes, amounts); keys in the 'limits' table below."),
    Setting("audit", {}, dict,
            "Integrity of the record: the trail's hash (sha256 | sm3) and signed anchors; "
            "keys in the 'audit' table below."),
    Setting("gate", {}, dict,
            "The workflow gate (POST /api/v1/gate): its time budget and its answer when the "
            "database cannot answer in time; keys in the 'gate' table below."),
)

CALENDAR_KEYS = ("extra_holidays", "extra_workdays", "country", "departments")
DEPARTMENT_CALENDAR_KEYS = ("extra_holidays", "extra_workdays", "country")


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    database_url: str | None = declared(SETTINGS, "database_url")
    region: str = declared(SETTINGS, "region")
    region_name: str = declared(SETTINGS, "region_name")
    timezone: str = declared(SETTINGS, "timezone")
    rules_dir: Path = declared(SETTINGS, "rules_dir", Path)
    encoding: str = declared(SETTINGS, "encoding")
    batch_size: int = declared(SETTINGS, "batch_size")
    parallel_ingest: bool = declared(SETTINGS, "parallel_ingest")
    ingest_jobs: int = declared(SETTINGS, "ingest_jobs")
    handling_days: int = declared(SETTINGS, "handling_days")
    red_to_tier2: bool = declared(SETTINGS, "red_to_tier2")
    reminder_days: int = declared(SETTINGS, "reminder_days")
    # A section's setting defaults to {}: the section with its own table's defaults.
    notify: NotifyConfig = declared(SETTINGS, "notify", lambda raw: NotifyConfig(**raw))
    mapping: XesMapping = declared(SETTINGS, "mapping", lambda raw: XesMapping(**raw))
    mappings: Mapping[str, EventMapping] = declared(SETTINGS, "mappings")
    flood_percent: int = declared(SETTINGS, "flood_percent")
    stale_days: int = declared(SETTINGS, "stale_days")
    extra_holidays: frozenset[date] = declared(
        SETTINGS, "calendar", lambda raw: frozenset(raw.get("extra_holidays", ())))
    extra_workdays: frozenset[date] = declared(
        SETTINGS, "calendar", lambda raw: frozenset(raw.get("extra_workdays", ())))
    calendar_country: str = declared(SETTINGS, "calendar", lambda raw: raw.get("country", "cn"))
    # department code → {country, extra_holidays, extra_workdays} on top of the county's
    calendar_departments: Mapping[str, Mapping] = declared(
        SETTINGS, "calendar", lambda raw: MappingProxyType(dict(raw.get("departments", {}))))
    regions: Mapping[str, RegionConfig] = declared(SETTINGS, "regions")
    language: str = declared(SETTINGS, "language")
    scores: ScoreWeights = declared(SETTINGS, "scores", lambda raw: ScoreWeights(**raw))
    inbox: InboxConfig | None = declared(  # no dir, no inbox
        SETTINGS, "inbox", lambda raw: InboxConfig(**raw) if raw else None)
    lease_seconds: int = declared(SETTINGS, "lease_seconds")
    lease_wait_seconds: int = declared(SETTINGS, "lease_wait_seconds")
    catch_up_max_slots: int = declared(SETTINGS, "catch_up_max_slots")
    evaluate_jobs: int = declared(SETTINGS, "evaluate_jobs")
    schedule: ScheduleConfig = declared(SETTINGS, "schedule",
                                        lambda raw: ScheduleConfig(**raw))
    sources: Mapping[str, PullSource] = declared(SETTINGS, "sources")
    web: WebConfig = declared(SETTINGS, "web", lambda raw: WebConfig(**raw))
    limits: Limits = declared(SETTINGS, "limits", lambda raw: Limits(**raw))
    audit: AuditConfig = declared(SETTINGS, "audit", lambda raw: AuditConfig(**raw))
    gate: GateConfig = declared(SETTINGS, "gate", lambda raw: GateConfig(**raw))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def calendar(self) -> WorkCalendar:
        """The working-day calendar: official arrangements plus this file's overrides
        (a department's own, a county's own: ``for_department``, ``for_region``)."""
        own = {code: WorkCalendar(self.extra_holidays | d.get("extra_holidays", frozenset()),
                                  self.extra_workdays | d.get("extra_workdays", frozenset()),
                                  d.get("country") or self.calendar_country)
               for code, d in self.calendar_departments.items()}
        base = WorkCalendar(self.extra_holidays, self.extra_workdays, self.calendar_country,
                            own)
        counties = {code: base.with_local(r.extra_holidays, r.extra_workdays)
                    for code, r in self.regions.items() if r.extra_holidays or r.extra_workdays}
        return replace(base, regions=counties) if counties else base


def load_config(path: str | Path | None) -> Config:
    """Load config.yaml; ``None`` means ./config.yaml if present, else all defaults."""
    explicit = path is not None
    path = Path(path if path is not None else DEFAULT_CONFIG_NAME)
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
    if type(raw.get("region")) is int:  # region: 330102 unquoted is a YAML integer
        raw["region"] = f"{raw['region']:06d}"
    values = read_section(raw, SETTINGS, where)
    reason = regions.problem(values["region"])
    if reason:
        raise ConfigError(where, raw.line_of("region"), reason)
    values["region_name"] = (values["region_name"] or "").strip()
    if values["region_name"] and values["region"] == regions.UNNAMED:
        raise ConfigError(where, raw.line_of("region_name"),
                          "region_name 须与 region（本县的行政区划代码）一起设置")
    base_dir = path.resolve().parent
    notify = load_notify(raw.get("notify") or LineDict(), where)
    mapping = load_mapping(raw.get("mapping") or LineDict(), where)
    calendar = values["calendar"] or LineDict()
    check_keys(calendar, set(CALENDAR_KEYS), where, ConfigError)
    dates = {key: _dates(calendar, key, where) for key in ("extra_holidays", "extra_workdays")}
    country = str(calendar.get("country") or "cn")
    problem = check_country(country)
    if problem:
        raise ConfigError(where, calendar.line_of("country"), problem)
    departments = {}
    for code, own in (calendar.get("departments") or {}).items():
        if not isinstance(own, LineDict):
            raise ConfigError(where, calendar["departments"].line_of(code),
                              f"'calendar.departments.{code}' must be a mapping of "
                              f"{', '.join(DEPARTMENT_CALENDAR_KEYS)}")
        check_keys(own, set(DEPARTMENT_CALENDAR_KEYS), where, ConfigError)
        problem = check_country(str(own["country"])) if own.get("country") else None
        if problem:
            raise ConfigError(where, own.line_of("country"), problem)
        departments[str(code)] = {
            **{k: _dates(own, k, where) for k in ("extra_holidays", "extra_workdays")},
            **({"country": str(own["country"])} if own.get("country") else {})}
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(where, raw.line_of("timezone"),
                          f"unknown timezone '{values['timezone']}' (e.g. Asia/Shanghai)") from None
    try:
        check_encoding(values["encoding"])
    except EncodingProblem as exc:
        raise ConfigError(where, raw.line_of("encoding"), str(exc)) from None
    for name in ("batch_size", "handling_days", "reminder_days", "stale_days"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'{name}' must be at least 1")
    if values["ingest_jobs"] < 0:
        raise ConfigError(where, raw.line_of("ingest_jobs"),
                          "'ingest_jobs' must be 0 (as many as there are CPUs) or more")
    return Config(
        path=path,
        base_dir=base_dir,
        database_url=values["database_url"],
        region=values["region"],
        region_name=values["region_name"],
        timezone=values["timezone"],
        rules_dir=_rules_dir(base_dir, raw.get("rules_dir")),
        encoding=values["encoding"],
        batch_size=values["batch_size"],
        parallel_ingest=values["parallel_ingest"],
        ingest_jobs=values["ingest_jobs"],
        handling_days=values["handling_days"],
        red_to_tier2=values["red_to_tier2"],
        reminder_days=values["reminder_days"],
        notify=notify,
        mapping=mapping,
        extra_holidays=dates["extra_holidays"], extra_workdays=dates["extra_workdays"],
        mappings=MappingProxyType(load_mappings(values["mappings"], where)),
        flood_percent=_percent(values["flood_percent"], raw, where),
        stale_days=values["stale_days"],
        calendar_country=country,
        calendar_departments=MappingProxyType(departments),
        regions=load_regions(raw.get("regions"), where, base_dir, notify.sinks),
        language=load_language(raw, values["language"], where),
        scores=load_scores(raw.get("scores") or LineDict(), where),
        **load_unattended(values, raw, where, base_dir),
        sources=load_sources(values["sources"] or LineDict(), where),
        web=load_web(values["web"] or LineDict(), where),
        limits=load_limits(values["limits"] or LineDict(), where),
        audit=load_audit(values["audit"] or LineDict(), where, base_dir),
        gate=load_gate(values["gate"] or LineDict(), where),
    )


def _percent(value: int, raw: LineDict, where: str) -> int:
    if not 0 < value <= 100:
        raise ConfigError(where, raw.line_of("flood_percent"),
                          f"'flood_percent' must be from 1 to 100, got {value}")
    return value


def _rules_dir(base_dir: Path, configured: str | None) -> Path:
    """The configured folder; unset, ./rules beside the config, else the shipped rules."""
    if configured:
        return base_dir / configured
    local = base_dir / "rules"
    return local if local.is_dir() else SHIPPED_RULES


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
    url = cli_url or environ.get(DATABASE_URL_ENV) or config.database_url or \
        f"sqlite:///{config.base_dir / DEFAULT_DB_NAME}"
    register_url(url)  # its password is masked wherever text goes out (monitor/masking.py)
    return url
