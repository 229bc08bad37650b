"""The store's own region: which county a store was made for, and naming it once.

Migration 0026 gives every per-county table a ``region`` column and records the
deployment's code in ``meta.region`` (``000000`` when the store was upgraded before
config.yaml named its county). :func:`adopt_region` runs at start, like the trail's
``adopt``: when config.yaml names a county and the store is still ``000000``, every row
of ``000000`` becomes that county's, once (docs/scale.md: "``000000`` may be renamed
once"). A store already named keeps its name; rows of other counties (``ingest …
--region``) are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, select, text, update

from .models import Alert, Base, Department, Meta
from .regions import UNNAMED, check, covered_prefix
from .sqllist import one_of

log = logging.getLogger(__name__)
KEY = "region"


TRAIL = ("trail", "trail_head")  # named by monitor/trail.py ``adopt``: a chain per region


def region_tables() -> tuple[str, ...]:
    """Every table that carries a region, by name, in the models' order; not the trail's,
    whose chains the trail names itself (migration 0027)."""
    return tuple(name for name, table in Base.metadata.tables.items()
                 if "region" in table.c and name not in TRAIL)


def store_region(conn: Connection) -> str:
    """The county the store was made for (``000000``: not yet named)."""
    return conn.scalar(select(Meta.value).where(Meta.key == KEY)) or UNNAMED


def region_column(column):
    """The ``region`` column of the table that ``column`` (an ORM attribute or a Core
    column) belongs to."""
    table = column.class_.__table__ if hasattr(column, "class_") else column.table
    return table.c.region


def in_region(column, scope: str):
    """A WHERE clause: ``column`` names ``scope`` or a region it covers
    (:func:`monitor.regions.covers`, as a prefix an index on the region serves)."""
    prefix = covered_prefix(scope)
    return column == scope if prefix is None else column.startswith(prefix, autoescape=True)


def region_of_alert(alert_id: int):
    """The region of alert ``alert_id``, as a scalar subquery: what a row hanging on an
    alert (a disposition, an order, a level change) is stamped with, in its INSERT."""
    return select(Alert.region).where(Alert.id == alert_id).scalar_subquery()


def alert_regions(conn: Connection, alert_ids: Iterable[int]) -> dict[int, str]:
    """alert id → region, for rows written many at a time (holds, notices)."""
    ids = sorted(set(alert_ids))
    return dict(conn.execute(select(Alert.id, Alert.region).where(one_of(Alert.id, ids)))
                .tuples().all()) if ids else {}


def department_names(conn: Connection) -> dict[tuple[str, str], str]:
    """(region, code) → the department's name. Two counties of one store may use the same
    code (migration 0029), so a code is named in the county of the alert it is printed
    for, never by the code alone."""
    return {(region, code): name for region, code, name in conn.execute(
        select(Department.region, Department.code, Department.name))}


def adopt_region(engine: Engine, region: str) -> bool:
    """Name an unnamed store ``region``: its ``000000`` rows become ``region``'s and so
    does the columns' default (PostgreSQL; SQLite keeps a column default in the table's
    definition, and every writer stamps its rows anyway). True if anything changed."""
    check(region)
    if region == UNNAMED:
        return False
    with engine.begin() as conn:
        if store_region(conn) != UNNAMED:
            return False
        for name in region_tables():
            table = Base.metadata.tables[name]
            conn.execute(update(table).where(table.c.region == UNNAMED).values(region=region))
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"ALTER TABLE {name} ALTER COLUMN region "
                                  f"SET DEFAULT '{region}'"))  # checked: six digits
        conn.execute(update(Meta).where(Meta.key == KEY).values(value=region))
    log.info("store named region %s (its rows of 000000 renamed)", region)
    return True
