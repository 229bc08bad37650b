"""The rule set in force, on the trail: which rule files and versions judged each run.

Every evaluation (``run``, ``nightly``, ``serve``) compares the rules it runs — id, file,
version hash (monitor/rules/model.py), status, enabled — with the set last recorded, and
appends a ``rules_in_force`` entry when they differ: the whole set, its digest, and what
changed (added, removed, new version). A run uses the set of the newest such entry before
it, so months later an inspector can tell which thresholds produced a finding and when
they changed, whoever edited the files.

In a store of several counties with rule overrides (monitor/regionrules.py) the entry
also holds ``regions``: each such county's own entries (its file, version, or
``enabled: false``), and what changed in them; with none, the entry and its digest are
exactly a single county's. Each other county's own chain (docs/scale.md) gets its own
``rules_in_force`` entry too, when its set differs from the one last recorded there:
the rules in force in that county (:meth:`~monitor.regionrules.RuleSets.effective`:
each rule's file, version, status, enabled, and ``source`` — ``base`` or
``regions/CODE``), their digest and what changed — so ``audit verify --region CODE``
and an inspector of one county's chain see which rules judged its cases.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import Connection, Engine, select

from . import trail
from .models import TrailEntry
from .regionrules import Off, RuleSets
from .rules.model import Rule
from .trail import SYSTEM, Entry

ACTION = "rules_in_force"


def snapshot(rules: list[Rule] | tuple[Rule, ...]) -> dict[str, dict[str, Any]]:
    """Each rule's file by its name (not the folder it was read from: the same rules run
    from a checkout, an installed package or a moved deployment are the same set, and the
    same seed's demo gives the same trail wherever it runs), version, status, enabled."""
    return {r.id: {"file": PurePath(r.path).name, "version": r.version, "status": r.status,
                   "enabled": r.enabled} for r in sorted(rules, key=lambda r: r.id)}


def regional(sets: RuleSets) -> dict[str, dict[str, dict[str, Any]]]:
    """County → its override entries, as :func:`snapshot` gives rules (an entry that
    switches a base rule off: its file and ``enabled: false``)."""
    return {code: {e.id: ({"file": PurePath(e.path).name, "enabled": False}
                          if isinstance(e, Off) else snapshot([e])[e.id])
                   for e in sorted(own, key=lambda e: e.id)}
            for code, own in sorted(sets.overrides.items()) if own}


def digest(rules: dict[str, dict[str, Any]],
           regions: dict[str, dict[str, dict[str, Any]]] | None = None) -> str:
    whole: dict[str, Any] = {"rules": rules, "regions": regions} if regions else rules
    return hashlib.sha256(json.dumps(whole, sort_keys=True, ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


def _changes(now: dict[str, Any], before: dict[str, Any]) -> dict[str, list[str]]:
    return {"added": sorted(set(now) - set(before)),
            "removed": sorted(set(before) - set(now)),
            "changed": sorted(i for i in set(now) & set(before) if now[i] != before[i])}


def in_county(sets: RuleSets, region: str) -> dict[str, dict[str, Any]]:
    """The rules in force in ``region`` as its chain records them (see the docstring)."""
    out: dict[str, dict[str, Any]] = {}
    for e, source in sets.effective(region):
        shown = {"file": PurePath(e.path).name, "enabled": False} if isinstance(e, Off) \
            else snapshot([e])[e.id]
        out[e.id] = {**shown, "source": source}
    return out


def _last(conn: Connection, region: str) -> dict[str, Any] | None:
    return conn.scalar(select(TrailEntry.detail).where(TrailEntry.region == region,
                                                       TrailEntry.action == ACTION)
                       .order_by(TrailEntry.seq.desc()).limit(1))


def _counties(conn: Connection, sets: RuleSets, own: str) -> list[Entry]:
    """The entries of the other counties' chains whose set in force changed: every
    county with a chain or overrides of its own (its chain begun then)."""
    entries = []
    for code in sorted((set(trail.regions(conn)) | set(sets.overrides)) - {own, trail.UNNAMED}):
        trail.lock(conn, code)  # read its last entry under its lock (code order)
        now = in_county(sets, code)
        key = digest(now)
        last = _last(conn, code)
        if last and last.get("digest") == key:
            continue
        entries.append(Entry(ACTION, None, SYSTEM, {
            "digest": key, "region": code, "rules": now,
            **_changes(now, (last or {}).get("rules", {}))}, region=code))
    return entries


def record(engine: Engine, sets: RuleSets | list[Rule], at: datetime) -> str | None:
    """Append the set when it differs from the last one recorded (and each other
    county's on its own chain); the new digest of the store's set, or None."""
    sets = sets if isinstance(sets, RuleSets) else RuleSets(tuple(sets))
    now, counties = snapshot(sets.base), regional(sets)
    key = digest(now, counties)
    with engine.begin() as conn:
        own = trail.lock(conn).region  # the whole set is recorded on the store's own chain
        last = _last(conn, own)
        entries = _counties(conn, sets, own)
        if last and last.get("digest") == key:
            trail.append(conn, at, entries)
            return None
        before = (last or {}).get("rules", {})
        detail: dict[str, Any] = {"digest": key, "rules": now, **_changes(now, before)}
        was = (last or {}).get("regions", {})
        if counties or was:
            detail["regions"] = counties
            detail["region_changes"] = {
                code: _changes(counties.get(code, {}), was.get(code, {}))
                for code in sorted(set(counties) | set(was))
                if counties.get(code) != was.get(code)}
        trail.append(conn, at, [Entry(ACTION, None, SYSTEM, detail), *entries])
    return key
