"""Honest re-runs: ``run --as-of`` earlier than the latest evaluation.

Evaluating as of a moment before the rules' last one re-evaluates them in full from
that moment and rewrites the evidence (and may lower the level) of the alerts they
raised or updated since — quietly, before this check: 34 alerts' evidence changed in the
attack session. :func:`check_rewind` says what such a run would change; the CLI refuses
it unless ``--rewind`` is given, and then prints that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import Engine, func, select

from .models import Alert, RuleState


@dataclass(frozen=True)
class Rewind:
    latest: datetime          # the latest moment any of the rules was evaluated as of
    rules: tuple[str, ...]    # the rules last evaluated after the requested moment
    alerts: int               # their alerts raised or updated after it

    def describe(self, as_of: datetime, tz: tzinfo) -> str:
        return (f"--as-of {as_of.astimezone(tz):%Y-%m-%d %H:%M} is earlier than the latest "
                f"evaluation ({self.latest.astimezone(tz):%Y-%m-%d %H:%M}) of "
                f"{len(self.rules)} rule(s) ({', '.join(self.rules[:5])}"
                f"{', …' if len(self.rules) > 5 else ''}): they would be re-evaluated in "
                f"full as of then, and {self.alerts} alert(s) raised or updated since may "
                "have their evidence and level rewritten")


def check_rewind(engine: Engine, as_of: datetime, rule_ids: tuple[str, ...] = ()
                 ) -> Rewind | None:
    """What evaluating as of ``as_of`` would rewind, or None if nothing (no rule was
    evaluated after it)."""
    with engine.connect() as conn:
        query = select(RuleState.rule_id, RuleState.as_of).where(RuleState.as_of > as_of)
        if rule_ids:
            query = query.where(RuleState.rule_id.in_(rule_ids))
        later = conn.execute(query.order_by(RuleState.rule_id)).all()
        if not later:
            return None
        ids = tuple(r.rule_id for r in later)
        alerts = conn.scalar(select(func.count()).select_from(Alert).where(
            Alert.rule_id.in_(ids), Alert.updated_at > as_of))
    return Rewind(max(r.as_of for r in later), ids, alerts or 0)
