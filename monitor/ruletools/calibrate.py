"""``rules calibrate``: per-item, per-step thresholds for ``step_too_fast`` from history.

Step durations are heavily skewed (most gaps seconds, a long tail of days), so mean ±
k·std is useless — the mean minus two standard deviations is usually negative. Instead,
on the logarithm of each gap (seconds, floored at 1): the median and the median absolute
deviation (MAD, scaled by 1.4826 to estimate a standard deviation), proposing
``exp(median − k·MAD)``; and, for comparison, a low quantile of the gaps. For each item
and step the report shows how many findings the current threshold, the MAD proposal and
the quantile would raise over the same history. The proposal is written as a candidate
rule directory (the rule's ``item_min_minutes``, which wins over the catalog) for
``rules backtest``.

Calibration describes current practice, not policy: where most cases are back-filled (the
WABO log), the robust threshold legitimises seconds-long steps. Read the counts before
shipping.

The gaps are read with one window-function query, ordered by item, step and gap, and
handled one (item, step) group at a time: memory holds one group.
"""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select

from ..errors import MonitorError
from ..models import Event, Item
from ..rules.model import Rule
from ..rules.sql import seconds_between

MAD_SCALE = 1.4826  # MAD × this estimates the standard deviation of a normal distribution


@dataclass(frozen=True)
class Proposal:
    item: str
    step: str
    n: int
    median_s: float
    mad_log: float
    mean_minus_2sd_s: float
    current_min: float | None
    current_findings: int
    proposed_min: float
    proposed_findings: int
    quantile_min: float
    quantile_findings: int


def only(items: tuple[str, ...], region: str | None) -> list[Any]:
    """The conditions on ``events`` of a calibration: its items, its county."""
    e = Event.__table__
    return [*([e.c.item_code.in_(items)] if items else []),
            *([e.c.region == region] if region else [])]


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _round_minutes(seconds: float) -> float:
    """Minutes, rounded to two significant figures (at least 0.01)."""
    minutes = max(seconds / 60, 0.01)
    return float(f"{minutes:.2g}")


def propose(gaps: list[float], k: float, q: float) -> tuple[float, float, float, float, float]:
    """(median s, MAD of logs, mean − 2·sd s, MAD proposal min, quantile min) of sorted gaps."""
    logs = [math.log(max(g, 1.0)) for g in gaps]
    med = statistics.median(logs)
    mad = MAD_SCALE * statistics.median(abs(x - med) for x in logs)
    mean_2sd = statistics.fmean(gaps) - 2 * statistics.pstdev(gaps)
    return (math.exp(med), mad, mean_2sd, _round_minutes(math.exp(med - k * mad)),
            _round_minutes(_quantile(gaps, q)))


KINDS = ("step_too_fast", "case_too_fast")


def calibrate(engine: Engine, rule: Rule, *, items: tuple[str, ...] = (),
              steps: tuple[str, ...] = (), k: float = 3.0, q: float = 0.01,
              min_n: int = 30, as_of: datetime | None = None,
              region: str | None = None) -> list[Proposal]:
    """Proposals for ``rule``'s per-item thresholds; ``region``: from that county's
    history and catalog only."""
    if rule.kind not in KINDS:
        raise MonitorError(f"rule {rule.id} is {rule.kind}: calibrate proposes "
                           f"{' and '.join(KINDS)} thresholds")
    if rule.kind == "case_too_fast":
        return _case_spans(engine, rule, items, k, q, min_n, as_of, region)
    with engine.connect() as conn:
        catalog = dict(conn.execute(select(Item.code, Item.min_minutes).where(
            *([Item.region == region] if region else []))).tuples().all())
        wanted = set(steps) or set(rule.params.min_minutes) | {
            s for m in catalog.values() for s in (m or {})} | {
            s for m in rule.params.item_min_minutes.values() for s in m}
        e = Event.__table__
        ordered = dict(partition_by=e.c.case_id, order_by=(e.c.occurred_at, e.c.id))
        pairs = select(e.c.item_code, e.c.step, e.c.occurred_at,
                       _lag(e.c.occurred_at, ordered).label("prev_at")
                       ).where(e.c.is_system.is_(False),  # never the previous step
                               *only(items, region))
        if as_of is not None:
            pairs = pairs.where(e.c.occurred_at <= as_of)
        gaps_of = pairs.subquery()
        gap = seconds_between(gaps_of.c.occurred_at, gaps_of.c.prev_at)
        query = (select(gaps_of.c.item_code, gaps_of.c.step, gap.label("gap"))
                 .where(gaps_of.c.prev_at.is_not(None), gaps_of.c.step.in_(sorted(wanted)))
                 .order_by(gaps_of.c.item_code, gaps_of.c.step, gap))
        out = []
        for (item, step), rows in groupby(conn.execute(query), key=lambda r: (r[0], r[1])):
            gaps = [max(float(r.gap), 0.0) for r in rows]
            if len(gaps) < min_n:
                continue
            current = _current(rule, catalog.get(item) or {}, item, step)
            med, mad, mean_2sd, proposed, quantile = propose(gaps, k, q)
            below = lambda minutes: sum(1 for g in gaps if g < minutes * 60)  # noqa: E731
            out.append(Proposal(item, step, len(gaps), med, mad, mean_2sd, current,
                                below(current) if current is not None else 0, proposed,
                                below(proposed), quantile, below(quantile)))
    if not out:
        raise MonitorError(f"no item and step with at least {min_n} gaps to calibrate on")
    return out


def _case_spans(engine: Engine, rule: Rule, items: tuple[str, ...], k: float, q: float,
                min_n: int, as_of: datetime | None, region: str | None) -> list[Proposal]:
    """case_too_fast: per item, acceptance → first decision (else completion), in seconds;
    proposals under the step name ``case``."""
    from sqlalchemy import case, func

    e = Event.__table__

    def first(step: str):
        return func.min(case((e.c.step == step, e.c.occurred_at)))

    spans = (select(e.c.case_id, func.min(e.c.item_code).label("item_code"),
                    first("accept").label("accepted"),
                    func.coalesce(first("decide"), first("complete")).label("ended"))
             .where(e.c.is_system.is_(False),
                    *([e.c.occurred_at <= as_of] if as_of is not None else []),
                    *only(items, region))
             .group_by(e.c.case_id).subquery())
    span = seconds_between(spans.c.ended, spans.c.accepted)
    out = []
    with engine.connect() as conn:
        catalog: dict[str, int | None] = {
            code: minutes for code, minutes in conn.execute(
                select(Item.code, Item.min_case_minutes).where(
                    *([Item.region == region] if region else [])))}
        query = (select(spans.c.item_code, span.label("gap"))
                 .where(spans.c.accepted.is_not(None), spans.c.ended.is_not(None),
                        span >= 0)
                 .order_by(spans.c.item_code, span))
        for item, rows in groupby(conn.execute(query), key=lambda r: r[0]):
            gaps = [max(float(r.gap), 0.0) for r in rows]
            if len(gaps) < min_n:
                continue
            current = rule.params.item_min_case_minutes.get(item, catalog.get(item))
            current = float(current if current is not None else rule.params.min_case_minutes)
            med, mad, mean_2sd, proposed, quantile = propose(gaps, k, q)
            below = lambda minutes: sum(1 for g in gaps if g < minutes * 60)  # noqa: E731
            out.append(Proposal(item, "case", len(gaps), med, mad, mean_2sd, current,
                                below(current), proposed, below(proposed), quantile,
                                below(quantile)))
    if not out:
        raise MonitorError(f"no item with at least {min_n} decided cases to calibrate on")
    return out


def _lag(column, ordered):
    from sqlalchemy import func

    return func.lag(column).over(**ordered)


def _current(rule: Rule, catalog_steps: dict, item: str, step: str) -> float | None:
    for source in (rule.params.item_min_minutes.get(item, {}), catalog_steps,
                   rule.params.min_minutes):
        if step in source:
            return float(source[step])
    return None


def write_candidate(rules_dir: Path, rule: Rule, proposals: list[Proposal], out_dir: Path,
                    note: str, region: str | None = None) -> Path:
    """A copy of ``rules_dir`` in ``out_dir`` whose file holding ``rule`` has it with the
    proposals as ``item_min_minutes`` (see :func:`write_params`); the path of that file."""
    per_item: dict = {}
    for p in proposals:
        if rule.kind == "case_too_fast":
            per_item[p.item] = p.proposed_min
        else:
            per_item.setdefault(p.item, {})[p.step] = p.proposed_min
    return write_params(rules_dir, rule, out_dir, note, {
        "item_min_case_minutes" if rule.kind == "case_too_fast" else "item_min_minutes":
        per_item}, region)


def write_params(rules_dir: Path, rule: Rule, out_dir: Path, note: str,
                 params: dict, region: str | None = None) -> Path:
    """A copy of ``rules_dir`` in ``out_dir`` whose file holding ``rule`` has ``params``
    set on it (the rest of the file as it was); the path of that file. ``region``: a
    county's calibration — its own rule's file is changed where it lies in the copy; a
    base rule becomes the county's override (``regions/CODE/calibrated-ID.yaml``, that
    rule alone), the base left as it was."""
    if out_dir.exists():
        raise MonitorError(f"{out_dir} already exists: choose another --out or remove it")
    shutil.copytree(rules_dir, out_dir)
    source = Path(rule.path).resolve()
    try:
        target = out_dir / source.relative_to(rules_dir.resolve())
    except ValueError:  # a county folder configured outside rules_dir
        target = out_dir / "regions" / str(region) / source.name
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    entries = raw["rules"] if isinstance(raw, dict) else raw
    if region is not None and target.parent == out_dir:  # the base's: the county's own now
        target = out_dir / "regions" / region / f"calibrated-{rule.id}.yaml"
        entries = [e for e in entries if e.get("id") == rule.id]
        raw = {"rules": entries}
    target.parent.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if entry.get("id") == rule.id:
            entry["params"] = {**(entry.get("params") or {}), **params}
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False, width=100)
    target.write_text(f"# {note}\n{text}", encoding="utf-8")
    return target
