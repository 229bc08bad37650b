"""The control center's rules (monitor/web/site.py ``Rules``): the rule files' stamps are
looked at once a second at most, not on every request (a glob and a stat of every base
and county file was ~10 % of a gate server's busy time at 200 decisions/s), and an
edited file — base or a county's override — is in force within that second. The clock
is a counter the test moves (``monotonic`` is injected)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from monitor.web import site
from monitor.web.site import Rules

COUNTY = "330106"


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write(path, text, stamp_ns):
    """``text`` into ``path`` with a modification time of its own (a filesystem whose
    clock is coarse would otherwise give an edit the stamp it had)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stamp_ns, stamp_ns))


@pytest.fixture
def watched(tmp_path, config, monkeypatch):
    rules = tmp_path / "rules"
    write(rules / "base.yaml", "- {id: fast, kind: step_too_fast, level: yellow}\n", 10**18)
    write(rules / "regions" / COUNTY / "own.yaml",
          "- {id: fast, kind: step_too_fast, level: red}\n", 10**18)
    looks = []
    stamp = site._stamp
    monkeypatch.setattr(site, "_stamp", lambda d: looks.append(d) or stamp(d))
    ticks = Ticks()
    return Rules(rules, replace(config, rules_dir=rules), monotonic=ticks), rules, ticks, looks


def level(sets, region=None):
    if region is None:
        return [r.level for r in sets.base]
    [(rule, _)] = sets.effective(region)
    return rule.level


def test_an_edited_base_file_is_in_force_after_the_interval_and_not_looked_at_before(watched):
    rules, folder, ticks, looks = watched
    assert level(rules.sets()) == ["yellow"] and [r.level for r in rules.current()] == ["yellow"]
    looked = len(looks)
    write(folder / "base.yaml", "- {id: fast, kind: step_too_fast, level: red}\n", 2 * 10**18)
    for _ in range(50):  # many requests within the second: the files are not looked at
        ticks.now += 0.019
        assert level(rules.sets()) == ["yellow"]
    assert len(looks) == looked
    ticks.now += 0.05  # 1.0 s after the last look
    assert level(rules.sets()) == ["red"] and [r.level for r in rules.current()] == ["red"]
    assert len(looks) > looked


def test_an_edited_county_override_is_in_force_after_the_interval(watched):
    rules, folder, ticks, looks = watched
    assert level(rules.sets(), COUNTY) == "red"
    write(folder / "regions" / COUNTY / "own.yaml",
          "- {id: fast, kind: step_too_fast, level: warning}\n", 2 * 10**18)
    ticks.now += 0.999
    assert level(rules.sets(), COUNTY) == "red"
    ticks.now += 0.001
    assert level(rules.sets(), COUNTY) == "warning"


def test_a_new_rule_file_is_seen_after_the_interval(watched):
    rules, folder, ticks, _ = watched
    rules.current()
    write(folder / "more.yaml", "- {id: fee, kind: unpaid_fee, level: red}\n", 10**18)
    assert [r.id for r in rules.current()] == ["fast"]
    ticks.now += 1.0
    assert sorted(r.id for r in rules.current()) == ["fast", "fee"]
