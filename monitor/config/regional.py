"""The ``regions`` section: what one county of a store holding several configures for
itself, on top of the province's (top-level) settings.

    regions:
      330106:                      # a county's code (行政区划代码, GB/T 2260)
        calendar:
          extra_holidays: [2027-03-15]
          extra_workdays: [2027-03-20]
        rules_dir: rules/regions/330106
        channels: {sms: xihu-sms}  # and its own delivery settings: quiet_hours, digest_at,
        quiet_hours: "22:00-07:00" # max_attempts, backoff_seconds, backoff_max_seconds

A county not listed here counts in the top-level calendar and is judged by the base
rules. Its rule overrides (monitor/regionrules.py) are read from ``rules_dir``; unset,
from ``regions/CODE/`` under the top-level ``rules_dir`` when that folder exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import regions
from ..errors import ConfigError
from ..yamlsrc import LineDict, check_keys
from .notify import NotifyConfig, check_channels, clock_of, span_of
from .settings import Setting, declared, read_section, section

REGION_SETTINGS: tuple[Setting, ...] = (
    Setting("calendar", {}, dict,
            "The county's own working days on top of the top-level calendar: "
            "extra_holidays and extra_workdays, lists of dates (a local holiday, a "
            "make-up working day). Every rule counts the county's cases in it."),
    Setting("rules_dir", None, str,
            "Folder of the county's rule overrides (a rule with a base rule's id replaces "
            "it in this county; `enabled: false` switches it off here). Unset: "
            "regions/CODE/ under the top-level rules_dir, when it exists."),
    Setting("channels", {}, dict,
            "The county's own delivery: channel (sms, email, workflow) → a sink declared "
            "under notify.sinks (its own SMS gateway, SMTP sender, webhook URL; secrets "
            "from the environment as for any sink). A channel not listed: notify.channels."),
    Setting("max_attempts", None, int,
            "Delivery attempts of the county's messages before one is marked failed "
            "(unset: notify.max_attempts)."),
    Setting("backoff_seconds", None, int,
            "Wait before the first retry of the county's messages; doubles each attempt "
            "(unset: notify.backoff_seconds)."),
    Setting("backoff_max_seconds", None, int,
            "Longest wait between two attempts for the county's messages (unset: "
            "notify.backoff_max_seconds)."),
    Setting("quiet_hours", None, str,
            "The county's local quiet hours HH:MM-HH:MM, during which tier-1 messages of "
            "its new or risen alerts wait (not red); \"\" for none here (unset: "
            "notify.quiet_hours)."),
    Setting("digest_at", None, str,
            "Local time HH:MM of the daily digest of the county's people (unset: "
            "notify.digest_at)."),
)
# the delivery settings a county may set for itself (``notify``'s of the same name)
DELIVERY = ("max_attempts", "backoff_seconds", "backoff_max_seconds", "quiet_hours",
            "digest_at")
CALENDAR_KEYS = ("extra_holidays", "extra_workdays")


@dataclass(frozen=True)
class RegionConfig:
    """One county's own settings (``regions: CODE:``)."""

    code: str
    extra_holidays: frozenset[date] = declared(
        REGION_SETTINGS, "calendar", lambda raw: frozenset(raw.get("extra_holidays", ())))
    extra_workdays: frozenset[date] = declared(
        REGION_SETTINGS, "calendar", lambda raw: frozenset(raw.get("extra_workdays", ())))
    rules_dir: Path | None = declared(
        REGION_SETTINGS, "rules_dir", lambda raw: None if raw is None else Path(raw))
    channels: Mapping[str, str] = declared(REGION_SETTINGS, "channels")
    # the county's own delivery settings (``DELIVERY``, as ``notify`` holds them): only
    # those it sets; the others are the store's
    delivery: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def notify(self, store: NotifyConfig) -> NotifyConfig:
        """The store's ``notify`` settings with this county's own delivery settings."""
        return replace(store, **self.delivery) if self.delivery else store


def load_regions(raw: object, where: str, base_dir: Path, sinks: Mapping[str, object]
                 ) -> Mapping[str, RegionConfig]:
    """The ``regions`` section, checked: county codes, known keys, dates, and channels
    naming the sinks of ``notify.sinks`` (``sinks``)."""
    if raw is None:
        return MappingProxyType({})
    raw = section(raw, "regions", where)
    out: dict[str, RegionConfig] = {}
    for key, own in raw.items():
        code = f"{key:06d}" if type(key) is int else str(key)  # 330106 unquoted: an int
        at = raw.line_of(key)
        reason = regions.problem(code)
        if reason is None and (code == regions.UNNAMED or regions.level(code) != regions.COUNTY):
            reason = f"regions 下须为县级行政区划代码（如 330106），而非 {code}"
        if reason:
            raise ConfigError(where, at, reason)
        if code in out:
            raise ConfigError(where, at, f"地区 {code} 重复出现（另一处写法相同的代码）")
        values = read_section(section(own if own is not None else LineDict(),
                                      f"regions.{code}", where), REGION_SETTINGS, where)
        calendar = values["calendar"] or LineDict()
        check_keys(calendar, set(CALENDAR_KEYS), where, ConfigError)
        dates = {k: _dates(calendar, k, code, where) for k in CALENDAR_KEYS}
        both = dates["extra_holidays"] & dates["extra_workdays"]
        if both:
            raise ConfigError(where, calendar.line_of("extra_holidays"),
                              f"{min(both).isoformat()} is listed both as an extra holiday "
                              f"and as an extra working day of region {code}")
        rules_dir = values["rules_dir"]
        channels = check_channels(values["channels"] or LineDict(), sinks, where)
        out[code] = RegionConfig(code, dates["extra_holidays"], dates["extra_workdays"],
                                 None if rules_dir is None else base_dir / rules_dir,
                                 MappingProxyType(channels),
                                 MappingProxyType(_delivery(own, values, code, where)))
    return MappingProxyType(out)


def _delivery(raw: object, values: dict[str, Any], code: str, where: str
              ) -> dict[str, Any]:
    """The delivery settings the county sets (checked as ``notify``'s are)."""
    out: dict[str, Any] = {}
    at = raw.line_of if isinstance(raw, LineDict) else (lambda _: None)
    for name in DELIVERY:
        value = values[name]
        if value is None:
            continue
        label = f"regions.{code}.{name}"
        if name == "quiet_hours":
            out[name] = span_of(str(value), where, at(name), label)
        elif name == "digest_at":
            out[name] = clock_of(str(value), where, at(name), label)
        elif value < 1:
            raise ConfigError(where, at(name), f"'{label}' must be at least 1")
        else:
            out[name] = value
    return out


def _dates(calendar: LineDict, key: str, code: str, where: str) -> frozenset[date]:
    values = calendar.get(key) or []
    if not isinstance(values, list) or not all(type(v) is date for v in values):
        raise ConfigError(where, calendar.line_of(key),
                          f"'regions.{code}.calendar.{key}' must be a list of dates like "
                          "2027-10-01")
    return frozenset(values)
