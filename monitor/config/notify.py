"""The ``notify`` section: the sinks notifications leave by, which channel uses which, and
how often delivery is retried.

A sink's options are validated against its own declaration (``OPTIONS`` and ``check`` of
its class in :mod:`monitor.sinks`), so an error names the file and line before anything
runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError, did_you_mean
from .settings import Setting, declared, line, read_section, section

CHANNELS = ("sms", "email", "workflow")

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
    Setting("quiet_hours", "", str,
            "Local hours (HH:MM-HH:MM, e.g. 22:00-07:00; empty: none) during which tier-1 "
            "messages of a new or risen alert wait until the end of the quiet hours; a red "
            "alert is never held."),
    Setting("digest_at", "08:00", str,
            "Local time (HH:MM) from which the first audit pass of each day queues the "
            "daily digest of people who chose one (users set-delivery USER digest)."),
)


@dataclass(frozen=True)
class SinkSpec:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _specs(sinks: Mapping[str, Mapping[str, Any]]) -> Mapping[str, SinkSpec]:
    """Sinks as config.yaml writes them (name → {type, options…}), as specs."""
    return MappingProxyType({
        str(name): SinkSpec(str(name), spec["type"],
                            MappingProxyType({k: v for k, v in spec.items() if k != "type"}))
        for name, spec in sinks.items()})


def clock_of(text: str, where: str, at: int | None, name: str = "notify.digest_at") -> time:
    """``HH:MM`` as a time of day, or the error naming the setting ``name``."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(where, at, f"'{name}' must be a time HH:MM, "
                                     f"got {text!r}") from None


def span_of(text: str, where: str, at: int | None, name: str = "notify.quiet_hours"
            ) -> tuple[time, time] | None:
    """``HH:MM-HH:MM`` (may run past midnight) as (start, end); empty: None."""
    if not text.strip():
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ConfigError(where, at, f"'{name}' must be HH:MM-HH:MM "
                                     f"(e.g. 22:00-07:00), got {text!r}")
    span = (clock_of(start, where, at, name), clock_of(end, where, at, name))
    if span[0] == span[1]:
        raise ConfigError(where, at, f"'{name}' {text!r} starts and ends at the "
                                     "same time; leave it empty for no quiet hours")
    return span


@dataclass(frozen=True)
class NotifyConfig:
    sinks: Mapping[str, SinkSpec] = declared(NOTIFY_SETTINGS, "sinks", _specs)
    channels: Mapping[str, str] = declared(NOTIFY_SETTINGS, "channels")
    max_attempts: int = declared(NOTIFY_SETTINGS, "max_attempts")
    backoff_seconds: int = declared(NOTIFY_SETTINGS, "backoff_seconds")
    backoff_max_seconds: int = declared(NOTIFY_SETTINGS, "backoff_max_seconds")
    quiet_hours: tuple[time, time] | None = declared(NOTIFY_SETTINGS, "quiet_hours",
                                                     lambda v: span_of(v, "", None))
    digest_at: time = declared(NOTIFY_SETTINGS, "digest_at", lambda v: clock_of(v, "", None))



def check_channels(raw: Mapping[str, Any], sinks: Mapping[str, Any], where: str
                   ) -> dict[str, str]:
    """Channel → sink name, each channel one of :data:`CHANNELS` and each sink declared
    under ``notify.sinks`` (the top level's ``notify.channels``, a county's own)."""
    channels = {}
    for channel, sink in raw.items():
        at = line(raw, channel)
        if channel not in CHANNELS:
            raise ConfigError(where, at, f"unknown channel '{channel}'"
                                         f"{did_you_mean(str(channel), CHANNELS)}; channels: "
                                         f"{', '.join(CHANNELS)}")
        if sink not in sinks:
            raise ConfigError(where, at, f"channel '{channel}': no sink named '{sink}'"
                                         f"{did_you_mean(str(sink), sinks)}; define it under "
                                         "notify.sinks")
        channels[channel] = str(sink)
    return channels


def load_notify(raw: Any, where: str) -> NotifyConfig:
    """The ``notify`` section of a config file, validated."""
    # The sink classes pull in smtplib, ssl and urllib: imported when a file is loaded,
    # not by every command (``--help`` stays fast).
    from ..sinks import SINK_TYPES

    raw = section(raw, "notify", where)
    values = read_section(raw, NOTIFY_SETTINGS, where)
    sinks = {"log": SinkSpec("log", "log")}  # always there; a sink of that name replaces it
    for name, spec in values["sinks"].items():
        at = line(values["sinks"], name)
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(where, at, f"sink '{name}' must be a mapping with a type "
                                         f"({', '.join(SINK_TYPES)})")
        kind = SINK_TYPES.get(spec["type"])
        if kind is None:
            raise ConfigError(where, line(spec, "type"), f"sink '{name}': unknown type "
                              f"'{spec['type']}'{did_you_mean(str(spec['type']), SINK_TYPES)}; "
                              f"types: {', '.join(SINK_TYPES)}")
        options = {k: v for k, v in spec.items() if k != "type"}
        for key in options:
            if key not in kind.OPTIONS:
                raise ConfigError(where, line(spec, key), f"sink '{name}': unknown option "
                                  f"'{key}'{did_you_mean(str(key), kind.OPTIONS)}; type "
                                  f"{kind.TYPE} takes {', '.join(kind.OPTIONS) or 'no options'}")
        for key, (typ, required, _) in kind.OPTIONS.items():
            if required and options.get(key) in (None, ""):
                raise ConfigError(where, at, f"sink '{name}': missing required option '{key}'")
            if key in options and not isinstance(options[key], typ):
                raise ConfigError(where, line(spec, key), f"sink '{name}': '{key}' must be "
                                                          f"{typ.__name__}")
        problem = kind.check(options)
        if problem:
            raise ConfigError(where, line(spec, problem[0]) or at,
                              f"sink '{name}': {problem[1]}")
        sinks[str(name)] = SinkSpec(str(name), spec["type"], MappingProxyType(options))
    channels = check_channels(values["channels"], sinks, where)
    for name in ("max_attempts", "backoff_seconds", "backoff_max_seconds"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'notify.{name}' must be at least 1")
    return NotifyConfig(MappingProxyType(sinks), MappingProxyType(channels),
                        values["max_attempts"], values["backoff_seconds"],
                        values["backoff_max_seconds"],
                        span_of(values["quiet_hours"], where, raw.line_of("quiet_hours")),
                        clock_of(values["digest_at"], where, raw.line_of("digest_at")))
