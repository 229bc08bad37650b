"""List filters checked against what exists, so a typo is a usage error and not a silent
"no alerts": ``--status opne``, ``--department shj``, ``--kind case-too-fast``, ``--rule``,
``runs list --job``.

What exists is read from the database (the catalog's departments, the rules that have run
or raised alerts, the kinds of stored alerts) plus the fixed vocabularies (statuses, the
rule-kind registry), so a value that is valid but has no alert yet still passes.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, union

from .center.listing import STATUSES
from .errors import UsageProblem
from .config.schedule import JOBS
from .models import Alert, Department, Item, RuleState, Run
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
