"""Unattended runs: the ``inbox`` drop directory, the database lease a run holds, catch-up
after downtime, and the ``schedule`` of the ``serve`` daemon's jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..crontab import cron_trigger
from ..errors import ConfigError, did_you_mean
from ..yamlsrc import LineDict
from .settings import Setting, declared, read_section, section

INBOX_SETTINGS: tuple[Setting, ...] = (
    Setting("dir", None, str, "The drop directory, relative to config.yaml (unset: no inbox). "
            "Ingested files move to its done/, rejected ones to failed/ with a .reason file."),
    Setting("settle_seconds", 5, int,
            "A file is picked up only once unchanged for this long (a copy still being "
            "written is left for the next pass); names starting with '.' or ending in "
            ".part/.tmp are never picked up: write under such a name, then rename."),
    Setting("catalog", ["catalog*.yaml", "catalog*.yml"], list,
            "Name patterns of catalog files. A catalog carries powers (roles, departments): "
            "one dropped into the inbox is refused unless it is in trusted_catalog_dir."),
    Setting("trusted_catalog_dir", None, str,
            "A directory (relative to config.yaml) whose catalog files the inbox loads; only "
            "people trusted with the catalog should write there. Tier-2 roles and moves of "
            "monitors still wait for approval (permit-monitor grants). Unset: none."),
    Setting("receipts", ["receipts*.csv", "receipts*.csv.gz", "receipts*.xlsx"], list,
            "Name patterns of fiscal receipt files."),
    Setting("activity", ["activity*.csv", "activity*.csv.gz", "activity*.xlsx"], list,
            "Name patterns of monitoring-log files (user_id, at, action)."),
    Setting("ratings", ["ratings*.csv", "ratings*.jsonl", "ratings*.xlsx", "ratings*.csv.gz"],
            list, "Name patterns of 好差评 rating files (rating_id, …, score, tags)."),
    Setting("complaints", ["complaints*.csv", "complaints*.jsonl", "complaints*.xlsx",
                           "complaints*.csv.gz"], list,
            "Name patterns of 效能投诉 complaint files (complaint_id, received_at, …)."),
    Setting("events", ["*.csv", "*.jsonl", "*.ndjson", "*.xes", "*.xlsx", "*.csv.gz",
                       "*.jsonl.gz", "*.xes.gz"], list,
            "Name patterns of event files (after the catalog, receipts and activity patterns)."),
    Setting("owner", None, str,
            "User name or numeric uid every dropped file must belong to (unset: any); a "
            "file of another owner goes to failed/ unread. Only regular files are ever "
            "taken: a symbolic link, device or pipe goes to failed/ unread."),
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


@dataclass(frozen=True)
class InboxConfig:
    dir: Path = declared(INBOX_SETTINGS, "dir", required=True)
    settle_seconds: int = declared(INBOX_SETTINGS, "settle_seconds")
    catalog: tuple[str, ...] = declared(INBOX_SETTINGS, "catalog")
    trusted_catalog_dir: Path | None = declared(INBOX_SETTINGS, "trusted_catalog_dir")
    receipts: tuple[str, ...] = declared(INBOX_SETTINGS, "receipts")
    activity: tuple[str, ...] = declared(INBOX_SETTINGS, "activity")
    ratings: tuple[str, ...] = declared(INBOX_SETTINGS, "ratings")
    complaints: tuple[str, ...] = declared(INBOX_SETTINGS, "complaints")
    events: tuple[str, ...] = declared(INBOX_SETTINGS, "events")
    owner: str | None = declared(INBOX_SETTINGS, "owner")


@dataclass(frozen=True)
class ScheduleConfig:
    jobs: Mapping[str, str] = declared(SCHEDULE_SETTINGS, "jobs")
    misfire_grace_seconds: int = declared(SCHEDULE_SETTINGS, "misfire_grace_seconds")


def load_unattended(values: dict[str, Any], raw: LineDict, where: str, base_dir: Path) -> dict:
    """inbox, lease_seconds, lease_wait_seconds, catch_up_max_slots, evaluate_jobs and
    schedule of a config file (``values``: its top-level settings as read), validated."""
    for name in ("lease_seconds", "evaluate_jobs"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'{name}' must be at least 1")
    for name in ("lease_wait_seconds", "catch_up_max_slots"):
        if values[name] < 0:
            raise ConfigError(where, raw.line_of(name), f"'{name}' must be 0 or more")
    return {"inbox": _inbox(values["inbox"] or LineDict(), where, base_dir),
            "lease_seconds": values["lease_seconds"],
            "lease_wait_seconds": values["lease_wait_seconds"],
            "catch_up_max_slots": values["catch_up_max_slots"],
            "evaluate_jobs": values["evaluate_jobs"],
            "schedule": _schedule(values["schedule"] or LineDict(), where)}


def _inbox(raw: Any, where: str, base_dir: Path) -> InboxConfig | None:
    values = read_section(section(raw, "inbox", where), INBOX_SETTINGS, where)
    if not values["dir"]:
        return None
    for key in ("catalog", "receipts", "activity", "ratings", "complaints", "events"):
        if not all(isinstance(p, str) for p in values[key]):
            raise ConfigError(where, raw.line_of(key), f"'inbox.{key}' must be a list of "
                                                       "name patterns like '*.csv'")
    trusted = values["trusted_catalog_dir"]
    return InboxConfig(dir=base_dir / values["dir"], settle_seconds=values["settle_seconds"],
                       trusted_catalog_dir=base_dir / trusted if trusted else None,
                       catalog=tuple(values["catalog"]), receipts=tuple(values["receipts"]),
                       activity=tuple(values["activity"]), ratings=tuple(values["ratings"]),
                       complaints=tuple(values["complaints"]), events=tuple(values["events"]),
                       owner=values["owner"])


def _schedule(raw: Any, where: str) -> ScheduleConfig:
    values = read_section(section(raw, "schedule", where), SCHEDULE_SETTINGS, where)
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
