"""missing_attachment (控制节点): a step lacking an attachment its item requires.

The seed's case: a social-organisation registration passed its site survey without the
survey report attached. The catalog's ``required_attachments`` (step → list of names) are
the control nodes; an event of that item and step whose ';'-separated ``attachments`` do
not name every required attachment exactly is a finding. Each event is judged on its own:
a survey redone later with the report does not undo the first survey that went ahead
without it. One alert per case, listing the missing names per step.

With ``cured_by_later: true`` (补正; default false) an attachment missing from an event
counts as supplied when a later event of the same case and step names it — the flow
stopped at the control node, the document was supplied and the step recorded again —
and an alert whose every missing attachment has been supplied so is cleared (复查销号,
monitor/clearing.py). Without it the kind never clears: each event stands as recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Integer, String, and_, exists, func, literal, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import as_of, bound, built, changed_cases, in_scope
from ._common import by_case, local

TITLE = "控制节点缺少必备附件"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：{missing}（控制节点缺少必备附件）"
FIELDS = ("missing", "steps", "count")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)
CLEARED = "复查：缺少的必备附件已在同一环节补录（补正），控制节点缺件情形不再成立，复查销号"
GATE = ("deny", "warn")  # the workflow gate may refuse a step on it (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    cured_by_later: bool = False  # a later event of the same case and step supplies it


def clears_when(params: Params) -> bool:
    """Only a rule that counts later events as supplying an attachment clears its alerts."""
    return params.cured_by_later


class position_of(FunctionElement):
    """``position_of(haystack, needle)``: 1-based character position of ``needle`` in
    ``haystack``, 0 when absent (no LIKE, so names may hold % and _)."""

    type = Integer()
    inherit_cache = True
    name = "position_of"


@compiles(position_of, "sqlite")
def _position_sqlite(element, compiler, **kw):
    haystack, needle = (compiler.process(c, **kw) for c in element.clauses)
    return f"instr({haystack}, {needle})"


@compiles(position_of, "postgresql")
def _position_pg(element, compiler, **kw):
    haystack, needle = (compiler.process(c, **kw) for c in element.clauses)
    return f"strpos({haystack}, {needle})"


def requirements(conn: Connection):
    """(region, item_code, step, name) for every required attachment in the catalog (each
    county's items their own, migration 0029), unnested from
    the items' JSON in SQL (SQLite json_each; PostgreSQL json_each/json_array_elements_text,
    implicitly lateral)."""
    steps_fn, names_fn = (("json_each", "json_each") if conn.dialect.name == "sqlite" else
                          ("json_each", "json_array_elements_text"))
    steps = getattr(func, steps_fn)(Item.required_attachments).table_valued(
        "key", "value").alias("req_step")
    names = getattr(func, names_fn)(steps.c.value).table_valued("value").alias("req_name")
    name = func.trim(names.c.value)
    return (select(Item.region, Item.code.label("item_code"), steps.c.key.label("step"),
                   name.label("name"))
            .select_from(Item).join(steps, true()).join(names, true())
            .where(name != "").distinct().subquery("required"))


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    query = built(rule, "missing", ctx, lambda: _query(conn, rule, ctx), conn.dialect.name)
    for case_id, rows in by_case(conn.execute(query, bound(ctx))):
        yield _finding(case_id, rows, ctx)


def _query(conn: Connection, rule, ctx: Context):
    e = Event.__table__
    req = requirements(conn)
    sep = literal(";", String)
    attached = sep + func.coalesce(e.c.attachments, "") + sep
    return (select(e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step,
                   e.c.actor, e.c.occurred_at, e.c.attachments, req.c.name)
            .join(req, and_(req.c.region == e.c.region, req.c.item_code == e.c.item_code,
                            req.c.step == e.c.step))
            .where(e.c.occurred_at <= as_of(),
                   in_scope(rule.scope, e.c.department, e.c.item_code),
                   changed_cases(ctx, e.c.case_id),
                   position_of(attached, sep + req.c.name + sep) == 0,
                   _not_supplied_later(e, req, sep) if rule.params.cured_by_later else true())
            .order_by(e.c.case_id, e.c.occurred_at, e.c.id, req.c.name))


def _not_supplied_later(e, req, sep):
    """No later event of the same case and step (visible as of the run) names the
    attachment."""
    later = Event.__table__.alias("later")
    named = sep + func.coalesce(later.c.attachments, "") + sep
    return ~exists().where(later.c.case_id == e.c.case_id, later.c.step == e.c.step,
                           later.c.occurred_at >= e.c.occurred_at, later.c.id != e.c.id,
                           later.c.occurred_at <= as_of(),
                           position_of(named, sep + req.c.name + sep) > 0)


def _finding(case_id: str, rows: list, ctx: Context) -> Finding:
    events: dict[str, dict] = {}
    for r in rows:
        entry = events.setdefault(r.event_id, {
            "event_id": r.event_id, "step": r.step, "actor": r.actor,
            "occurred_at": local(r.occurred_at, ctx),
            "attachments": r.attachments.split(";") if r.attachments else [], "missing": []})
        entry["missing"].append(r.name)
    by_step: dict[str, list[str]] = {}
    for entry in events.values():
        names = by_step.setdefault(entry["step"], [])
        names.extend(n for n in entry["missing"] if n not in names)
    first = rows[0]
    return Finding(
        subject=case_id, case_id=case_id, actor=first.actor, department=first.department,
        item_code=first.item_code,
        fields={"missing": "；".join(f"{step} 缺 {'、'.join(names)}"
                                    for step, names in by_step.items()),
                "steps": "、".join(by_step), "count": len(events)},
        evidence={"events": list(events.values()),
                  "missing_by_step": by_step},
        event_ids=tuple(events))
