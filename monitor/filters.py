"""List filters checked against what exists, so a typo is a usage error and not a silent
"no alerts": ``--status opne``, ``--department shj``, ``--kind case-too-fast``, ``--rule``,
``runs list --job``.

What exists is read from the database (the catalog's departments, the rules that have run
or raised alerts, the kinds of stored alerts) plus the fixed vocabularies (statuses, the
rule-kind registry), so a value that is valid but has no alert yet still passes.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, union

from . import regions
from .center.listing import STATUSES
from .errors import MonitorError, UsageProblem, usage
from .config.schedule import JOBS
from .models import Alert, Department, Item, RuleState, Run
from .regionstore import in_region
from .rules.kinds import KINDS

OPERATIONAL = "operational"  # the kind of the alerts raised by failed runs (monitor/runs.py)


def _known(engine: Engine, what: str) -> set[str]:
    with engine.connect() as conn:
        if what == "department":
            return set(conn.scalars(union(
                select(Department.code), select(Item.department),
                select(Alert.department).where(Alert.department.is_not(None)))))
        if what == "rule":
            return set(conn.scalars(union(select(RuleState.rule_id), select(Alert.rule_id))))
        if what == "kind":
            return {*KINDS, OPERATIONAL, *conn.scalars(select(Alert.kind).distinct())}
        if what == "status":
            return {*STATUSES, *conn.scalars(select(Alert.status).distinct())}
        if what == "job":
            return {*JOBS, *conn.scalars(select(Run.job).distinct())}
    raise ValueError(what)


def check_filters(engine: Engine, *, department: str | None = None, status: str | None = None,
                  kind: str | None = None, rule_id: str | None = None,
                  job: str | None = None) -> None:
    """Raise :class:`UsageProblem` for the first filter value that names nothing known."""
    for option, what, value in (("--department", "department", department),
                                ("--status", "status", status), ("--kind", "kind", kind),
                                ("--rule", "rule", rule_id), ("--job", "job", job)):
        if value is not None:
            known = _known(engine, what)
            if value not in known:
                raise UsageProblem(option, value, what, known)


def department_filter(engine: Engine, department: str | None,
                      region: str | None) -> tuple[str | None, str | None]:
    """The (code, region) an alert list's ``--department`` and ``--region`` select.

    Two counties of one store may share a department code (migration 0029), so
    ``--department`` takes ``REGION:CODE`` (``330106:D04``), or a bare code together with
    ``--region``. A bare code that more than one county under ``--region`` (every county,
    without it) has is a usage error listing them — the list never mixes two counties'
    departments of the same code unasked. The code itself is checked by
    :func:`check_filters` (a typo gets its "did you mean")."""
    if department is None:
        return None, region
    where, colon, code = department.rpartition(":")
    if colon:
        reason = regions.problem(where)
        if reason:
            raise usage(MonitorError(f"--department {department}: {reason} "
                                     "(use REGION:CODE, e.g. 330106:D04)"))
        if region is not None and not regions.covers(region, where):
            raise usage(MonitorError(f"--department {department}: region {where} is not "
                                     f"under --region {region}"))
        return code, where
    with engine.connect() as conn:
        found = conn.execute(
            select(Department.region, Department.name).where(
                Department.code == code,
                *([in_region(Department.region, region)] if region is not None else []))
            .order_by(Department.region)).all()
    if len(found) > 1:
        listed = ", ".join(f"{r}:{code} {name}" for r, name in found)
        raise usage(MonitorError(f"--department {code} is in {len(found)} counties ({listed}): "
                                 f"give one as --department REGION:CODE or add --region"))
    return code, region
