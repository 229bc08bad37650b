"""Which scheduled slots a catch-up evaluates as of (monitor/catchup.py), on fixed dates."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from monitor.catchup import slot_times
from monitor.config import load_config

TZ = ZoneInfo("Asia/Shanghai")


def config(tmp_path, text: str = ""):
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "config.yaml")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_cron_nightly_slots_are_the_nightly_fire_times_only(tmp_path):
    # last run Fri Nov 14 18:30; back Mon Nov 17 09:30: three 02:00 passes were missed
    slots, older = slot_times(config(tmp_path), "cli", local("2025-11-14T18:30"),
                              local("2025-11-17T09:30"), 31)
    assert slots == [local("2025-11-15T02:00"), local("2025-11-16T02:00"),
                     local("2025-11-17T02:00")] and older == 0


def test_the_daemon_catches_up_on_both_of_its_evaluating_jobs(tmp_path):
    slots, older = slot_times(config(tmp_path), "serve", local("2025-11-14T18:30"),
                              local("2025-11-17T09:30"), 31)
    assert slots == [local("2025-11-15T02:00"), local("2025-11-16T02:00"),
                     local("2025-11-17T02:00"), local("2025-11-17T08:00"),
                     local("2025-11-17T09:00")] and older == 0
    slots, older = slot_times(config(tmp_path), "serve", local("2025-11-14T18:30"),
                              local("2025-11-17T09:30"), 2)
    assert slots == [local("2025-11-17T08:00"), local("2025-11-17T09:00")] and older == 3


def test_without_a_nightly_schedule_one_slot_a_day_at_the_last_runs_time(tmp_path):
    cfg = config(tmp_path, "schedule:\n  jobs: {nightly: 'off'}\n")
    slots, older = slot_times(cfg, "cli", local("2025-11-14T03:15"),
                              local("2025-11-17T03:15"), 31)
    assert slots == [local("2025-11-15T03:15"), local("2025-11-16T03:15"),
                     local("2025-11-17T03:15")] and older == 0


def test_a_configured_cron_and_no_slots_at_all(tmp_path):
    cfg = config(tmp_path, "schedule:\n  jobs: {nightly: '30 23 * * mon-fri'}\n")
    slots, _ = slot_times(cfg, "cli", local("2025-11-14T23:40"), local("2025-11-18T00:00"), 31)
    assert slots == [local("2025-11-17T23:30")]  # the weekend has none
    assert slot_times(cfg, "cli", local("2025-11-17T23:40"), local("2025-11-18T00:00"),
                      31) == ([], 0)
    assert slot_times(cfg, "cli", local("2025-11-10T00:00"), local("2025-11-18T00:00"),
                      0) == ([], 6)  # catch_up_max_slots 0: none evaluated one by one
