"""config.yaml: every setting declared once (name, default, type, help).

The same table validates the file, supplies defaults (to the loader and to the frozen
dataclasses alike: :mod:`.settings`) and documents the settings (``permit-monitor
settings`` prints it, and a test checks the README lists each one). The result is a
frozen :class:`Config`; nothing mutates it later.

By what they configure: :mod:`.load` (the file as a whole: the store, the clock, the
calendar, supervision deadlines), :mod:`.notify` (delivery of notifications),
:mod:`.xes` (the XES mapping), :mod:`.reports` (language and scorecard weights),
:mod:`.schedule` (the inbox, the lease, catch-up and the daemon's jobs),
:mod:`.sources` (databases ``ingest pull`` reads), :mod:`.web` (the control center),
:mod:`.gate` (the workflow gate), :mod:`.audit` (the trail's hash and anchors) and
:mod:`.limits` (bounds on hostile or broken input).
Import from this package, not from those modules.

The package sits low: it imports only errors, the YAML reader, the calendar, the cron
parser and (to validate a sink's options against the sink's own declaration) the sinks.
"""

from .audit import AUDIT_KEY_ENV, AUDIT_SETTINGS, AuditConfig
from .encoding import AUTO as AUTO_ENCODING
from .encoding import EncodingProblem, check_encoding
from .gate import FAIL_MODES, GATE_SETTINGS, GateConfig
from .load import (DATABASE_URL_ENV, DEFAULT_CONFIG_NAME, DEFAULT_DB_NAME, SETTINGS,
                   SHIPPED_RULES, Config, load_config, resolve_database_url)
from .limits import AMOUNT_FORMATS, LIMIT_SETTINGS, Limits
from .notify import CHANNELS, NOTIFY_SETTINGS, NotifyConfig, SinkSpec
from .regional import REGION_SETTINGS, RegionConfig
from .reports import LANGUAGES, SCORE_SETTINGS, THEMES, ScoreWeights
from .schedule import INBOX_SETTINGS, JOBS, SCHEDULE_SETTINGS, InboxConfig, ScheduleConfig
from .settings import Setting
from .sources import SOURCE_KEYS, PullSource
from .web import WEB_SETTINGS, WebConfig
from .xes import MAPPING_SETTINGS, XesMapping

__all__ = [
    "AMOUNT_FORMATS", "AUDIT_KEY_ENV", "AUDIT_SETTINGS", "AuditConfig", "AUTO_ENCODING",
    "CHANNELS", "EncodingProblem", "LIMIT_SETTINGS", "Limits", "check_encoding",
    "DATABASE_URL_ENV", "FAIL_MODES", "GATE_SETTINGS", "GateConfig", "DEFAULT_CONFIG_NAME",
    "DEFAULT_DB_NAME",
    "INBOX_SETTINGS",
    "JOBS", "LANGUAGES", "MAPPING_SETTINGS", "NOTIFY_SETTINGS", "REGION_SETTINGS", "RegionConfig", "SCHEDULE_SETTINGS",
    "SCORE_SETTINGS", "SETTINGS", "SHIPPED_RULES", "SOURCE_KEYS", "THEMES", "Config",
    "InboxConfig", "NotifyConfig", "PullSource", "ScheduleConfig", "ScoreWeights", "Setting",
    "SinkSpec", "WEB_SETTINGS", "WebConfig", "XesMapping", "load_config",
    "resolve_database_url",
]
