"""Pluggable calendars and limits that hold outside China: a country's public holidays
(holidays package), limits in calendar days, limits that changed over time, items with
no limit."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone

import pytest

from conftest import CATALOG, dry_findings, event, ingest_rows, rule_file
from monitor.calendar import CALENDAR_DAYS, WorkCalendar
from monitor.errors import ConfigError

UTC = timezone.utc


def test_dutch_and_italian_public_holidays():
    nl, it = WorkCalendar(country="NL"), WorkCalendar(country="IT")
    assert not nl.is_workday(date(2025, 4, 21))     # Easter Monday
    assert not nl.is_workday(date(2025, 5, 29))     # Ascension Day
    assert nl.is_workday(date(2025, 6, 2))          # Festa della Repubblica: not Dutch
    assert not it.is_workday(date(2025, 6, 2))
    assert not it.is_workday(date(2025, 8, 15))     # Ferragosto
    assert it.is_workday(date(2025, 5, 29))
    # from Thursday 17 April: Good Friday and Easter Monday are off, so Tue 22, Wed 23
    assert nl.add_workdays(date(2025, 4, 17), 2) == date(2025, 4, 23)
    assert CALENDAR_DAYS.add_workdays(date(2025, 4, 17), 2) == date(2025, 4, 19)
    assert WorkCalendar().is_workday(date(2025, 10, 11))  # a Chinese 调休 Saturday


def test_calendar_country_is_validated_with_did_you_mean(tmp_path):
    from monitor.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("calendar:\n  country: Holland\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.yaml:2: unknown calendar country .Holland."):
        load_config(path)
    path.write_text("calendar:\n  country: IT\n", encoding="utf-8")
    assert not load_config(path).calendar().is_workday(date(2025, 8, 15))


LIMITS = CATALOG.replace("    required_attachments: {survey: [现场踏勘意见书]}\n", """\
    required_attachments: {survey: [现场踏勘意见书]}
    limit_unit: calendar_days
    limits:
      - {from: 2025-10-01, promised_days: 5, legal_days: 8}
""", 1).replace("category: penalty\n", "category: penalty\n    no_limit: true\n", 1)


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(LIMITS, encoding="utf-8")
    return path


def test_calendar_day_limits_in_force_from_a_date_and_items_with_no_limit(
        store, config, write_events, tmp_path):
    ingest_rows(store, config, write_events, [
        # accepted before the new limits: the item's 10/20 (calendar days) hold
        event("a1", "old", "accept", "2025-09-20 09:00:00"),
        event("a2", "old", "decide", "2025-10-05 09:00:00"),     # 15 days: yellow
        # accepted after: 5/8 calendar days, the National Day week counts in full
        event("b1", "new", "accept", "2025-09-30 09:00:00"),
        event("b2", "new", "decide", "2025-10-07 09:00:00"),     # before the change: 10/20
        event("c1", "late", "accept", "2025-10-01 09:00:00"),
        event("c2", "late", "decide", "2025-10-08 09:00:00"),    # 7 days > 5: yellow
        event("d1", "fine", "accept", "2025-10-01 09:00:00", item_code="D07-CF-001"),
    ])
    rules = rule_file(tmp_path, "- {id: od, kind: overdue}\n")
    got = dry_findings(store, config, rules, datetime(2026, 1, 1, tzinfo=UTC))
    assert {c: f.level for c, f in got.items()} == {"old": "yellow", "late": "yellow"}
    assert "自然日" in got["late"].fields["state"] and "工作日" not in got["late"].fields["state"]
    assert got["late"].fields["promised_days"] == 5


def test_an_item_whose_cases_end_by_withdrawal_is_not_open_for_ever(store, config, tmp_path,
                                                                       write_events):
    ended = tmp_path / "ended.yaml"
    ended.write_text(CATALOG.replace("    required_attachments: {survey: [现场踏勘意见书]}\n",
                                     "    required_attachments: {survey: [现场踏勘意见书]}\n"
                                     "    end_steps: [complete, withdraw]\n", 1),
                     encoding="utf-8")
    from monitor.catalog import ingest_catalog

    ingest_catalog(store, ended)
    ingest_rows(store, config, write_events, [
        event("w1", "gone", "accept", "2025-09-01 09:00:00"),
        event("w2", "gone", "withdraw", "2025-09-03 09:00:00"),
        event("o1", "open", "accept", "2025-09-01 09:00:00"),
    ])
    rules = rule_file(tmp_path, "- {id: od, kind: overdue}\n")
    got = dry_findings(store, config, rules, datetime(2025, 12, 1, tzinfo=UTC))
    assert set(got) == {"open"}


def test_a_department_may_count_in_its_own_calendar(tmp_path):
    from monitor.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("calendar:\n  extra_holidays: [2025-08-14]\n  departments:\n"
                    "    D07: {country: IT}\n    D04: {extra_workdays: [2025-08-16]}\n",
                    encoding="utf-8")
    calendar = load_config(path).calendar()
    ferragosto, saturday, local = date(2025, 8, 15), date(2025, 8, 16), date(2025, 8, 14)
    assert calendar.is_workday(ferragosto) and not calendar.is_workday(local)
    assert not calendar.for_department("D07").is_workday(ferragosto)
    assert not calendar.for_department("D07").is_workday(local)  # the county's own day off
    assert calendar.for_department("D04").is_workday(saturday)
    assert calendar.for_department("D05") is calendar
    path.write_text("calendar:\n  departments:\n    D07: {contry: IT}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="config.yaml:3: unknown key 'contry' "
                                          r"\(did you mean 'country'\?\)"):
        load_config(path)
