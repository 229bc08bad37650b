"""The event contract's optional ``region`` field: each event's county, in one source.

A province-wide platform exports one file with the cases of several counties. A row that
gives ``region`` (a column, a JSON or XES attribute, or a mapping's field or constant) is
of that county: it is checked against that county's catalog and stored under its code. A
row without it is of the run's county (``--region``, else config.yaml's ``region``), as
before.

A given code must be a county's six digits (GB/T 2260, :func:`monitor.regions.problem`)
and a county the store knows (:func:`known_regions`); else the row is quarantined as
``bad_region`` or ``unknown_region``. A case belongs to one county: an event of a case
already stored, or earlier in its batch, under another county is quarantined as
``case_other_region`` (:func:`split_cross_region`).

Everything is read once per run (:meth:`EventRegions.load`): validating a row asks the
database nothing, and storing a batch asks one lookup of its cases, only once the store
or the run holds more than one county.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from .. import regions as codes
from ..errors import did_you_mean
from ..models import Event, RegionName
from .batch import EventBatch
from .events import CatalogIndex, CatalogRows, Rejected, catalog_rows
from .sources import SourceRow
from .store import EVENT_COLUMNS, IN_CHUNK, Bad

REGION, CASE_ID, SOURCE_LINE = (EVENT_COLUMNS.index(name)
                                for name in ("region", "case_id", "source_line"))


@dataclass
class EventRegions:
    """The run's county and catalog, the counties a row may name, and their catalogs
    (made on first use, from the catalog rows read once)."""

    default: str
    catalog: CatalogIndex
    known: frozenset[str]
    rows: CatalogRows
    catalogs: dict[str, CatalogIndex] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection, default: str,
             configured: Iterable[str] = ()) -> "EventRegions":
        rows = catalog_rows(conn)
        catalog = CatalogIndex.of(rows, default)
        return cls(default, catalog, known_regions(conn, default, configured, rows), rows,
                   {default: catalog})

    def of(self, fields: Mapping[str, Any]) -> tuple[str, CatalogIndex]:
        """The county of a row and its catalog; :class:`Rejected` if the row names a code
        that is not a known county."""
        given = fields.get("region")
        if given is None:
            return self.default, self.catalog
        given = (given if given.__class__ is str else str(given)).strip()  # JSON: 330102
        if not given:
            return self.default, self.catalog
        catalog = self.catalogs.get(given)
        if catalog is not None:
            return given, catalog
        if (reason := codes.problem(given)) is not None:
            raise Rejected("bad_region", f"region: {reason}")
        if given not in self.known:
            raise Rejected("unknown_region",
                           f"region: 地区 {given} 不在本库已知的县级地区中（config.yaml 的 "
                           "region/regions、regions 表或已导入目录的地区）"
                           + did_you_mean(given, self.known))
        catalog = self.catalogs[given] = CatalogIndex.of(self.rows, given)
        return given, catalog


def known_regions(conn: Connection, default: str, configured: Iterable[str],
                  rows: CatalogRows) -> frozenset[str]:
    """The counties an event may name: the store's own (``default``), those configured
    under ``regions:``, the county-level codes of the ``regions`` table (``regions
    load``) and those whose catalog is loaded (``ingest catalog --region``)."""
    named = {code for code in conn.scalars(select(RegionName.code))
             if codes.problem(code) is None and codes.level(code) == codes.COUNTY}
    catalogued = {region for *_, region in rows[0]} | {region for _, region in rows[1]}
    return frozenset({default, *configured, *named, *catalogued})


def store_has_other_regions(conn: Connection, default: str) -> bool:
    """Whether events of a county other than ``default`` are stored: the lowest and the
    highest region, two probes of the ``(region, department)`` index (``region <> x``
    would scan a single county's events to the end)."""
    lowest = conn.scalar(select(func.min(Event.region)))  # each alone: SQLite probes an
    highest = conn.scalar(select(func.max(Event.region)))  # index for a lone min or max
    return lowest is not None and not lowest == highest == default


def split_cross_region(conn: Connection, batch: EventBatch) -> EventBatch:
    """``batch`` without the events whose case is stored, or earlier in the batch, under
    another county; those go to its rows set aside as ``case_other_region``. One lookup
    of the batch's cases."""
    cases = sorted({row[CASE_ID] for row in batch.rows})
    stored: dict[str, set[str]] = {}
    for start in range(0, len(cases), IN_CHUNK):
        for case, region in conn.execute(
                select(Event.case_id, Event.region).distinct()
                .where(Event.case_id.in_(cases[start:start + IN_CHUNK]))).tuples():
            stored.setdefault(case, set()).add(region)
    first: dict[str, str] = {}
    keep: list[int] = []
    bad = list(batch.bad)
    for k, row in enumerate(batch.rows):
        case, region = row[CASE_ID], row[REGION]
        theirs = stored.get(case)
        if theirs is None:
            theirs = {first.setdefault(case, region)}
        if region in theirs:
            keep.append(k)
            continue
        bad.append((batch.index[k], Bad(
            SourceRow(row[SOURCE_LINE], batch.fields[k]), "case_other_region",
            f"办件 {case} 已属于地区 {'、'.join(sorted(theirs))}，本行的地区是 {region}"
            "（一个办件只属于一个县）")))
    if len(keep) == len(batch.rows):
        return batch
    return EventBatch(batch.read, [batch.rows[k] for k in keep],
                      [batch.index[k] for k in keep], [batch.fields[k] for k in keep],
                      sorted(bad, key=lambda pair: pair[0]))


def batch_regions(batch: EventBatch) -> set[str]:
    """The counties of a batch's valid rows."""
    return {row[REGION] for row in batch.rows}
