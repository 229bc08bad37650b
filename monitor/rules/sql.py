"""Small SQL building blocks that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

from sqlalchemy import Boolean, Float, and_, bindparam, or_, select, true, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from ..models import Event, Item, dated
from ..sqllist import ListParam, member_of, one_of  # noqa: F401 (the kinds' import)
from .finding import Context
from .model import Scope


class time_point(FunctionElement):
    """A UTC timestamp as a value :class:`seconds_since` takes: SQLite's julianday (a
    float; parsing the text once per row, not once per comparison), PostgreSQL's
    timestamp itself. ``seconds_since(time_point(a), time_point(b))`` is exactly
    ``seconds_between(a, b)``."""

    type = Float()
    inherit_cache = True
    name = "time_point"


@compiles(time_point, "sqlite")
def _point_sqlite(element, compiler, **kw):
    return f"julianday({compiler.process(element.clauses, **kw)})"


@compiles(time_point, "postgresql")
def _point_pg(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


class seconds_since(FunctionElement):
    """``seconds_since(later, earlier)`` over two :class:`time_point` values."""

    type = Float()
    inherit_cache = True
    name = "seconds_since"


@compiles(seconds_since, "sqlite")
def _since_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"ROUND(({later} - {earlier}) * 86400.0, 3)"


@compiles(seconds_since, "postgresql")
def _since_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"


class under_seconds(FunctionElement):
    """``under_seconds(later, earlier, seconds)`` over two :class:`time_point` values: true
    when ``later`` is less than ``seconds`` (plus a second) after ``earlier`` — a cheap
    test a row fails before the exact :class:`seconds_since` is computed (it never fails a
    row that comparison keeps): SQLite compares julian days without rounding,
    PostgreSQL an interval, not the numeric its EXTRACT(EPOCH) returns."""

    type = Boolean()
    inherit_cache = True
    name = "under_seconds"


@compiles(under_seconds, "sqlite")
def _under_sqlite(element, compiler, **kw):
    later, earlier, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({later} - {earlier}) < ({seconds} + 1) / 86400.0)"


@compiles(under_seconds, "postgresql")
def _under_pg(element, compiler, **kw):
    later, earlier, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({later} - {earlier}) < make_interval(secs => {seconds} + 1))"


def seconds_between(later, earlier) -> ColumnElement:
    """Elapsed seconds between two UTC timestamps, exact to the millisecond on both
    backends (SQLite's julianday is a float, so the difference is rounded: 30 minutes
    must compare equal to 1800, not 1799.9999)."""
    return seconds_since(time_point(later), time_point(earlier))


class json_number(FunctionElement):
    """``json_number(col, key)``: the number stored under text ``key`` of a JSON object
    (``key`` a column or a bound value; whatever its text, it is never part of the SQL)."""

    type = Float()
    inherit_cache = True
    name = "json_number"


@compiles(json_number, "sqlite")
def _json_number_sqlite(element, compiler, **kw):
    col, key = (compiler.process(c, **kw) for c in element.clauses)
    # the key is compared, never spliced into a JSON path: a step named 'a"b' or '$.x'
    # once broke the path and failed the rule on every run
    return (f"(SELECT CAST(json_each.value AS REAL) FROM json_each({col}) "
            f"WHERE json_each.key = {key})")


@compiles(json_number, "postgresql")
def _json_number_pg(element, compiler, **kw):
    col, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(CAST({col} AS jsonb) ->> {key} AS DOUBLE PRECISION)"


def in_scope(scope: Scope, department: ColumnElement, item_code: ColumnElement) -> ColumnElement:
    """A WHERE clause for a rule's scope over a department and an item-code column; a
    scope of some counties (see :func:`in_regions`) also over the row's region."""
    conditions = [in_regions(scope, department)]
    if scope.departments:
        conditions.append(department.in_(sorted(scope.departments)))
    if scope.items:
        conditions.append(item_code.in_(sorted(scope.items)))
    if scope.categories:
        conditions.append(_item_of(item_code).in_(_items_of(item_code, scope.categories)))
    if scope.exclude_departments:
        conditions.append(department.not_in(sorted(scope.exclude_departments)))
    if scope.exclude_items:
        conditions.append(item_code.not_in(sorted(scope.exclude_items)))
    if scope.exclude_categories:
        conditions.append(_item_of(item_code).not_in(
            _items_of(item_code, scope.exclude_categories)))
    return and_(true(), *conditions)


def in_regions(scope: Scope, department: ColumnElement) -> ColumnElement:
    """The counties of a scope (``regions``, ``exclude_regions``) over the region column
    of the department column's own table (events, alerts); none where it has none (a
    department code names one department per county, so it cannot tell the county). A
    narrowing only: the engine keeps each finding of the scope's counties exactly
    (monitor/regionrules.py), this spares it the others' rows."""
    columns = getattr(getattr(department, "table", None), "c", None)
    if (not scope.regions and not scope.exclude_regions) or columns is None \
            or "region" not in columns:
        return true()
    region: ColumnElement = columns.region
    conditions = []
    if scope.regions:
        conditions.append(or_(region.is_(None), region.in_(sorted(scope.regions))))
    if scope.exclude_regions:
        conditions.append(or_(region.is_(None), region.not_in(sorted(scope.exclude_regions))))
    return and_(*conditions)


def _region_of(item_code: ColumnElement) -> ColumnElement | None:
    """The ``region`` column beside ``item_code`` in its table, if it has one."""
    table = getattr(item_code, "table", None)
    return table.c.region if table is not None and "region" in table.c else None


def _item_of(item_code: ColumnElement):
    """The item an event row names: (region, code), each county's catalog its own
    (migration 0029); the code alone where the row has no region."""
    region = _region_of(item_code)
    return item_code if region is None else tuple_(region, item_code)


def _items_of(item_code: ColumnElement, categories):
    """The catalog's items of ``categories``, as :func:`_item_of` names them."""
    columns = (Item.code,) if _region_of(item_code) is None else (Item.region, Item.code)
    return select(*columns).where(Item.category.in_(sorted(categories)))


def as_of() -> BindParameter:
    """The moment a detector evaluates as of, as the named parameter ``as_of`` (its value
    comes with the execution: :func:`bound`)."""
    return bindparam("as_of")


def bound(ctx: Context, **more: Any) -> dict[str, Any]:
    """The values of the named parameters of a statement made by :func:`built`: ``as_of``,
    the listed ``changed_cases`` (see :func:`changed_cases`), and ``more``."""
    return {"as_of": ctx.as_of, "changed_cases": ctx.changed_case_ids, **more}


Built = TypeVar("Built")
_BUILT: dict[tuple, tuple[Any, Any]] = {}  # (id(rule), name, shape, *key) → (rule, statement)


def built(rule: Any, name: str, ctx: Context, build: Callable[[], Built], *key: Any) -> Built:
    """The statement ``build()`` makes, made once per loaded rule, ``name``, ``key`` and
    shape of ``ctx`` (a full evaluation, or one over a list of cases) and executed with
    :func:`bound` values after that: building a statement and its cache key is most of
    the Python time of a query over one case (the workflow gate asks per decision what a
    run asks once). ``build`` must take every value that varies from one execution to
    the next as a named parameter (:func:`as_of`, the listed cases, ``key`` or ``more``);
    an incremental run whose cases are a subquery builds afresh each time."""
    shape = ("full" if ctx.since_event_id is None else
             "listed" if ctx.changed_case_ids is not None else None)
    if shape is None:
        return build()
    index = (id(rule), name, shape, *key)
    hit = _BUILT.get(index)
    if hit is not None and hit[0] is rule:
        return hit[1]
    statement = build()
    if len(_BUILT) >= 2048:  # rules reloaded many times over: start again
        _BUILT.clear()
    _BUILT[index] = (rule, statement)
    return statement


def new_events(ctx: Context) -> ColumnElement:
    """WHERE clause (over ``events``) for what the previous run could not see: events stored
    since, and events stored before it that it ignored because they happened or were keyed
    in after its as-of and are visible now. Everything on a full evaluation."""
    if ctx.since_event_id is None:
        return true()
    e = Event.__table__
    clause = e.c.id > ctx.since_event_id
    if ctx.deferred_ids is not None:
        return or_(clause, e.c.id.in_(ctx.deferred_ids)) if ctx.deferred_ids else clause
    if ctx.since_as_of is not None:
        clause = or_(clause, and_(e.c.id <= ctx.since_event_id,
                                  became_visible(ctx.since_as_of, ctx.as_of)))
    return clause


def became_visible(before: datetime, now: datetime) -> ColumnElement:
    """Events dated (happened or keyed in) after ``before`` and by ``now``: a range of the
    ``dated`` index, then both timestamps checked."""
    e = Event.__table__
    return and_(dated(e.c.occurred_at, e.c.recorded_at) > before,
                or_(and_(e.c.occurred_at > before, e.c.occurred_at <= now),
                    and_(e.c.recorded_at > before, e.c.recorded_at <= now)))


def changed_cases(ctx: Context, case_id: ColumnElement) -> ColumnElement:
    """WHERE clause keeping only the cases :func:`new_events` touches: the list the engine
    found once for the run (``ctx.changed_case_ids``), looked up in the case index, or,
    when there were too many to list, a subquery."""
    if ctx.since_event_id is None:
        return true()
    if ctx.changed_case_ids is not None:  # named: see built()
        return member_of(case_id, bindparam("changed_cases", tuple(ctx.changed_case_ids),
                                            type_=ListParam(False)))
    e = Event.__table__
    return case_id.in_(select(e.c.case_id).where(new_events(ctx)))
