"""The rule set in force, on the trail: which rule files and versions judged each run.

Every evaluation (``run``, ``nightly``, ``serve``) compares the rules it runs — id, file,
version hash (monitor/rules/model.py), status, enabled — with the set last recorded, and
appends a ``rules_in_force`` entry when they differ: the whole set, its digest, and what
changed (added, removed, new version). A run uses the set of the newest such entry before
it, so months later an inspector can tell which thresholds produced a finding and when
they changed, whoever edited the files.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import Engine, select

from . import trail
from .models import TrailEntry
from .rules.model import Rule
from .trail import SYSTEM, Entry

ACTION = "rules_in_force"


def snapshot(rules: list[Rule]) -> dict[str, dict[str, Any]]:
    """Each rule's file by its name (not the folder it was read from: the same rules run
    from a checkout, an installed package or a moved deployment are the same set, and the
    same seed's demo gives the same trail wherever it runs), version, status, enabled."""
    return {r.id: {"file": PurePath(r.path).name, "version": r.version, "status": r.status,
                   "enabled": r.enabled} for r in sorted(rules, key=lambda r: r.id)}


def digest(rules: dict[str, dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(rules, sort_keys=True, ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


def record(engine: Engine, rules: list[Rule], at: datetime) -> str | None:
    """Append the set when it differs from the last one recorded; the new digest, or None."""
    now = snapshot(rules)
    key = digest(now)
    with engine.begin() as conn:
        own = trail.lock(conn).region  # the set is recorded on the store's own chain
        last = conn.scalar(select(TrailEntry.detail).where(TrailEntry.region == own,
                                                           TrailEntry.action == ACTION)
                           .order_by(TrailEntry.seq.desc()).limit(1))
        if last and last.get("digest") == key:
            return None
        before = (last or {}).get("rules", {})
        changed = {"added": sorted(set(now) - set(before)),
                   "removed": sorted(set(before) - set(now)),
                   "changed": sorted(i for i in set(now) & set(before) if now[i] != before[i])}
        trail.append(conn, at, [Entry(ACTION, None, SYSTEM, {"digest": key, "rules": now,
                                                              **changed})])
    return key
