"""The names of regions: ``330106`` is 西湖区 (issue 21 item 1/2; docs/scale.md).

Officials read names, the store keeps codes. The ``regions`` reference table (migration
0028) maps a code (GB/T 2260) to its name and its parent; ``permit-monitor regions load
FILE`` fills it from a CSV of ``code,name`` rows — the two columns 民政部 publishes the
national list in. The program ships no list: a deployment loads the codes it needs.

Loading is all or nothing: every bad row (not a code, ``000000``, no name, a code twice)
is reported as ``file:line: reason`` and nothing is written; a good file is upserted in
one transaction, on the trail as ``regions_loaded`` with what was added and renamed.

Wherever a region is printed to people, :func:`label` shows ``330106 西湖区``; a code with
no name is shown bare, never an error.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, update

from . import regions, trail
from .errors import IngestError, SourceError, SourceErrors
from .models import Department, RegionName
from .regionstore import in_region

# a first row naming the columns, in English or as 民政部's list heads them
HEADERS = ({"code", "name"}, {"行政区划代码", "单位名称"}, {"代码", "名称"})
MAX_NAME = 100


class RegionFileError(SourceError):
    """A row of a regions CSV that cannot be loaded."""


@dataclass
class LoadResult:
    added: int = 0
    renamed: int = 0
    unchanged: int = 0


def read_file(path: str | Path) -> list[tuple[str, str]]:
    """(code, name) rows of a CSV ``path``, checked; :class:`SourceErrors` listing every bad
    row as ``file:line: reason`` (nothing is returned, so nothing is half loaded)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IngestError(f"{where}: no such file") from None
    except UnicodeDecodeError as exc:
        raise IngestError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "save the list as UTF-8 CSV") from None
    except OSError as exc:
        raise IngestError(f"{where}: cannot be read ({exc.strerror})") from None
    errors: list[SourceError] = []
    rows: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    reader = csv.reader(text.splitlines())
    for number, cells in enumerate(reader, start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if number == 1 and {c.lower() for c in cells[:2]} in HEADERS:
            continue
        if len(cells) != 2:
            errors.append(RegionFileError(where, number, f"须为两列“代码,名称”，此行有 "
                                                         f"{len(cells)} 列"))
            continue
        code, name = cells
        reason = regions.problem(code)
        if reason is None and code == regions.UNNAMED:
            reason = "000000 表示尚未命名的县，不能起名"
        if reason is None and not name:
            reason = f"代码 {code} 缺少名称"
        if reason is None and len(name) > MAX_NAME:
            reason = f"名称超过 {MAX_NAME} 个字符"
        if reason is None and code in seen:
            reason = f"代码 {code} 重复（第 {seen[code]} 行已有）"
        if reason:
            errors.append(RegionFileError(where, number, reason))
            continue
        seen[code] = number
        rows.append((code, name))
    if errors:
        raise SourceErrors(errors)
    return rows


def apply(engine: Engine, rows: Iterable[tuple[str, str]], at: datetime, by: str,
          source: str) -> LoadResult:
    """Upsert ``rows`` (code, name) in one transaction, on the trail as
    ``regions_loaded`` (codes added, and each renamed one's old and new name) when
    anything changed. Codes not in ``rows`` are kept."""
    result = LoadResult()
    diff: dict = {"source": source, "added": [], "renamed": []}
    with engine.begin() as conn:
        trail.lock(conn)
        known = dict(conn.execute(select(RegionName.code, RegionName.name)).tuples().all())
        fresh = []
        for code, name in rows:
            if code not in known:
                fresh.append({"code": code, "name": name, "parent": regions.parent(code)})
                diff["added"].append(code)
                result.added += 1
            elif known[code] != name:
                conn.execute(update(RegionName).where(RegionName.code == code)
                             .values(name=name))
                diff["renamed"].append({"code": code, "name": [known[code], name]})
                result.renamed += 1
            else:
                result.unchanged += 1
        if fresh:
            conn.execute(insert(RegionName), fresh)
        if fresh or diff["renamed"]:
            trail.append(conn, at, [trail.Entry("regions_loaded", None, by, diff)])
    return result


def load(engine: Engine, path: str | Path, at: datetime, by: str) -> LoadResult:
    """``regions load FILE``: :func:`read_file`, then :func:`apply`."""
    return apply(engine, read_file(path), at, by, source=Path(path).name)


def adopt_name(engine: Engine, region: str, name: str, at: datetime) -> bool:
    """config.yaml's ``region_name`` for the store's own ``region``, at start: written
    (and on the trail, by ``config``) only when it differs from the stored one. True if
    it changed anything."""
    if not name or region == regions.UNNAMED:
        return False
    if names_of(engine, [region]).get(region) == name:
        return False
    apply(engine, [(region, name)], at, "config", source="config.yaml region_name")
    return True


def names(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, str]:
    """code → name, for ``codes`` (None: every known one)."""
    query = select(RegionName.code, RegionName.name)
    if codes is not None:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        query = query.where(RegionName.code.in_(wanted))
    return dict(conn.execute(query).tuples().all())


def names_of(engine: Engine, codes: Iterable[str] | None = None) -> dict[str, str]:
    with engine.connect() as conn:
        return names(conn, codes)


def listing(engine: Engine) -> list[dict]:
    """Every named region, by code: code, name, parent, level."""
    with engine.connect() as conn:
        found = conn.execute(select(RegionName.code, RegionName.name, RegionName.parent)
                             .order_by(RegionName.code)).all()
    return [{"code": c, "name": n, "parent": p or "", "level": regions.level(c)}
            for c, n, p in found]


def choices(engine: Engine, scope: str | None) -> list[tuple[str, str]]:
    """(code, label) of the counties an office of ``scope`` may narrow a page to (those
    with departments in the catalog), by code; empty when there is only its own."""
    query = select(Department.region).distinct()
    if scope is not None:
        query = query.where(in_region(Department.region, scope))
    with engine.connect() as conn:
        codes = sorted(set(conn.scalars(query)) - {scope})
        known = names(conn, codes)
    return [(code, label(code, known)) for code in codes]


def label(code: str, known: Mapping[str, str]) -> str:
    """``330106 西湖区``; the bare code when it has no name (or is empty)."""
    name = known.get(code) if code else None
    return f"{code} {name}" if name else code
