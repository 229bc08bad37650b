"""docs/scale.md stays true to the schema: its table classifies every table of
``monitor.models`` (distributed, reference or local) with the primary and unique keys the
models declare today, names no table that does not exist (save Alembic's own and the ones
it marks *new*), and gives every distributed table keys, and foreign keys, that include
the region. On PostgreSQL the database itself judges those keys: a table partitioned by
region takes them, and refuses today's (Citus's rule for a distributed table)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, UniqueConstraint, create_engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from conftest import PG_URL
from monitor.models import Base

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")
CLASSES = ("distributed", "reference", "local")
OUTSIDE_MODELS = {"alembic_version"}  # Alembic's table: in every store, in no model


@dataclass(frozen=True)
class Row:
    table: str
    kind: str
    key: str
    unique: str
    becomes: str


def rows(text: str) -> dict[str, Row]:
    """The classification table of ``text``: the rows whose first cell is a table name."""
    out: dict[str, Row] = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"docs/scale.md: a table row has {len(cells)} cells: {line}"
        name = cells[0].strip("`")
        assert name not in out, f"docs/scale.md classifies {name} twice"
        out[name] = Row(name, cells[1], cells[2], cells[3], cells[4])
    return out


def columns(cell: str) -> tuple[str, ...]:
    """`a, b` → ('a', 'b')."""
    return tuple(c.strip() for c in cell.strip("`()").split(","))


def keys(cell: str) -> list[tuple[str, ...]]:
    """The column tuples a cell lists in backticks: `(region, id)`; `(region, x)` …"""
    return [columns(k) for k in re.findall(r"`\(([^`]*)\)`", cell)]


@dataclass(frozen=True)
class Declared:
    pk: tuple[str, ...]
    unique: set[tuple[str, ...]]
    foreign: set[str]  # the columns that point at another table


def declared(metadata: MetaData) -> dict[str, Declared]:
    """table → its keys as the models declare them."""
    out = {}
    for table in metadata.sorted_tables:
        unique = {tuple(c.name for c in con.columns) for con in table.constraints
                  if isinstance(con, UniqueConstraint)}
        unique |= {tuple(c.name for c in ix.columns) for ix in table.indexes if ix.unique}
        out[table.name] = Declared(tuple(c.name for c in table.primary_key.columns), unique,
                                   {fk.parent.name for fk in table.foreign_keys})
    return out


def problems(text: str, metadata: MetaData) -> list[str]:
    found = rows(text)
    tables = declared(metadata)
    out = [f"{name} is not classified in docs/scale.md" for name in tables if name not in found]
    for name, row in found.items():
        if row.kind not in CLASSES:
            out.append(f"{name}: class {row.kind!r} is none of {CLASSES}")
        if name not in tables:
            if name not in OUTSIDE_MODELS and row.key != "*new*":
                out.append(f"{name} is in docs/scale.md but in no model (mark it *new*?)")
            continue
        model = tables[name]
        if columns(row.key) != model.pk:
            out.append(f"{name}: key today is ({', '.join(model.pk)}), the doc says {row.key}")
        said = set(keys(row.unique))
        if said != model.unique:
            out.append(f"{name}: unique today is {sorted(model.unique)}, "
                       f"the doc says {row.unique}")
        if row.kind != "distributed":
            continue
        becomes = keys(row.becomes)
        if not becomes:
            out.append(f"{name}: no key given for it as a distributed table")
        for key in becomes:
            if "region" not in key:
                out.append(f"{name}: ({', '.join(key)}) does not include the region")
        for old in model.unique:
            if not any(set(old) | {"region"} <= set(new) for new in becomes[1:]):
                out.append(f"{name}: unique ({', '.join(old)}) has no key with the region")
        foreign = {columns(k) for k in re.findall(r"FK `\(([^`]*)\)`", row.becomes)}
        for column in sorted(model.foreign):
            if ("region", column) not in foreign:
                out.append(f"{name}: foreign key {column} is not given as FK (region, {column})")
    return out


def test_every_table_is_classified_with_its_keys():
    assert len(rows(DOC)) >= len(Base.metadata.tables)  # the table was read at all
    assert problems(DOC, Base.metadata) == []


def test_the_check_can_fail():
    events = next(line for line in DOC.splitlines() if line.startswith("| `events` |"))
    without = DOC.replace(events + "\n", "")
    assert problems(without, Base.metadata) == ["events is not classified in docs/scale.md"]

    widened = DOC.replace(events, events.replace("`(region, event_id)`", "`(event_id)`"))
    assert problems(widened, Base.metadata) == [
        "events: (event_id) does not include the region",
        "events: unique (event_id) has no key with the region"]

    stale = DOC.replace(events, events.replace("| `(event_id)` |", "| — |"))
    assert problems(stale, Base.metadata) == [
        "events: unique today is [('event_id',)], the doc says —"]

    unlinked = DOC.replace(events, events.replace("; FK `(region, run_id)`", ""))
    assert problems(unlinked, Base.metadata) == [
        "events: foreign key run_id is not given as FK (region, run_id)"]

    invented = DOC + "\n| `cases` | distributed | `id` | — | `(region, id)` | |\n"
    assert problems(invented, Base.metadata) == [
        "cases is in docs/scale.md but in no model (mark it *new*?)"]

    vague = DOC.replace("| `meta` | local |", "| `meta` | coordinator |")
    assert problems(vague, Base.metadata) == [
        "meta: class 'coordinator' is none of ('distributed', 'reference', 'local')"]


# --- the keys, as DDL, on a PostgreSQL table partitioned by region ---------------------

def partitioned_ddl(metadata: MetaData, found: dict[str, Row], today: bool) -> list[str]:
    """CREATE TABLE statements for every distributed table, ``PARTITION BY LIST
    (region)``: with the keys docs/scale.md gives (and its foreign keys, to the referenced
    table's region and column), or with today's keys (``today``)."""
    dialect = postgresql.dialect()
    out = []
    for table in metadata.sorted_tables:
        row = found[table.name]
        if row.kind != "distributed":
            continue
        parts = [f"{c.name} {c.type.compile(dialect=dialect)}" for c in table.columns
                 if c.name != "region"] + ["region varchar(6) NOT NULL"]
        if today:
            model = declared(metadata)[table.name]
            parts.append(f"PRIMARY KEY ({', '.join(model.pk)})")
            parts += [f"UNIQUE ({', '.join(u)})" for u in sorted(model.unique)]
        else:
            cell = re.sub(r"FK `\([^`]*\)`", "", row.becomes)
            pk, *unique = keys(cell)
            parts.append(f"PRIMARY KEY ({', '.join(pk)})")
            parts += [f"UNIQUE ({', '.join(u)})" for u in unique]
            for fk in table.foreign_keys:
                parts.append(f"FOREIGN KEY (region, {fk.parent.name}) REFERENCES "
                             f"{fk.column.table.name} (region, {fk.column.name})")
        out.append(f"CREATE TABLE {table.name} ({', '.join(parts)}) PARTITION BY LIST (region)")
    return out


def _keyed_by_region(table) -> bool:
    """Every unique key of ``table`` today (its primary key among them) includes region."""
    keys = [table.primary_key.columns.keys()]
    keys += [c.columns.keys() for c in table.constraints if isinstance(c, UniqueConstraint)]
    keys += [i.columns.keys() for i in table.indexes if i.unique]
    return all("region" in k for k in keys)


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only ($MONITOR_TEST_DATABASE_URL)")
def test_postgresql_takes_its_keys_on_tables_partitioned_by_region(empty_db_url):
    """The rule Citus enforces on a distributed table (every unique key includes the
    distribution column) is PostgreSQL's own on a partitioned one: the doc's keys and
    foreign keys are accepted there, and today's keys are refused, table by table, except
    on the tables whose keys include the region already."""
    engine = create_engine(empty_db_url)
    try:
        found = rows(DOC)
        with engine.begin() as conn:
            for ddl in partitioned_ddl(Base.metadata, found, today=False):
                conn.exec_driver_sql(ddl)
        refused = []
        for ddl in partitioned_ddl(Base.metadata, found, today=True):
            with engine.connect() as conn:
                try:
                    conn.exec_driver_sql(ddl.replace("CREATE TABLE ", "CREATE TABLE t_", 1))
                except DBAPIError as exc:
                    assert "must include all partitioning columns" in str(exc.orig)
                    refused.append(ddl.split()[2])
                conn.rollback()
        distributed = [name for name, row in found.items() if row.kind == "distributed"]
        keyed = [name for name in distributed if _keyed_by_region(Base.metadata.tables[name])]
        assert sorted(refused) == sorted(set(distributed) - set(keyed))
        assert "trail" in keyed and "trail_head" in keyed  # one chain per region: built
        assert {"departments", "items", "users"} <= set(keyed)  # a catalog per region: 0029
    finally:
        engine.dispose()
