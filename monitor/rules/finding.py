"""What a detector returns, and what it is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Callable, Mapping

from ..calendar import WorkCalendar


@dataclass(frozen=True)
class Context:
    """Everything a detector may depend on besides the database: time is an argument.

    ``since_event_id`` makes a run incremental: only events with a larger ``events.id``
    are new, and a detector re-evaluates only the subjects they touch (the cases with new
    events, the actors who keyed them, the department-months they fall in) — plus, for
    time-based kinds, whatever the passing of time can change (open cases). ``None`` means
    a full evaluation. Either way the findings for a subject must be the same.

    Events stored before the previous run but dated after its ``since_as_of`` were not
    visible to it; those that have become visible since are new too. The engine finds them
    once per run (``deferred_ids``; ``None``: too many, or not looked up — then
    :func:`~monitor.rules.sql.new_events` finds them by their timestamps, a range of the
    ``dated`` index), and the cases all those new events touch (``changed_case_ids``;
    ``None``: too many to list — then :func:`~monitor.rules.sql.changed_cases` is a
    subquery).
    """

    as_of: datetime  # aware, UTC
    tz: tzinfo
    calendar: WorkCalendar
    since_event_id: int | None = None
    since_as_of: datetime | None = None  # the moment the previous run evaluated as of
    deferred_ids: tuple[int, ...] | None = None  # see above
    changed_case_ids: tuple[str, ...] | None = None  # see above
    scores: Any = None  # the scorecard's weights (config ``scores``), for ranking_last
    # config ``stale_days``: open cases silent longer are stale (data_quality reports them,
    # overdue leaves them out); None: no case is stale
    stale_days: int | None = None
    # the workflow gate's look at one case and a candidate event (monitor/gate.py), in a
    # transaction that is rolled back: a detector keeps no state of its own and does not
    # sweep other cases for the passing of time
    probe: bool = False
    # the one county a region's worker evaluates (monitor/parallel.py: its connections see
    # that county's events only); None: the whole store
    region: str | None = None
    # the gate's memo of the catalog's whole-table reads, valid for the catalog version
    # its look began at (monitor/catalogmemo.py); None: read them afresh (a run)
    catalog: dict[Any, Any] | None = field(default=None, compare=False, hash=False)


def catalog_read(conn, memo: dict[Any, Any] | None, key: Any,
                 load: Callable[[Any], Any]) -> Any:
    """``load(conn)``: what a detector reads of the catalog (never of the events), taken
    from ``memo`` (``ctx.catalog``: the gate's, at this catalog version) when there is
    one. ``key`` names the read and every parameter it depends on; the value is shared,
    never to be changed."""
    if memo is None:
        return load(conn)
    if key not in memo:
        memo[key] = load(conn)
    return memo[key]


@dataclass(frozen=True)
class Finding:
    """One thing a rule found. ``subject`` (the case, the burst, the department-month)
    together with the rule id is the alert's dedupe key, unique in its region."""

    subject: str
    fields: Mapping[str, Any]
    evidence: Mapping[str, Any]
    level: str | None = None  # None: the rule's level
    case_id: str | None = None
    case_ids: tuple[str, ...] = ()
    actor: str | None = None
    department: str | None = None
    item_code: str | None = None
    period: str | None = None
    event_ids: tuple[str, ...] = field(default=())
    # the county of a finding about a department rather than a case (a department code
    # names no one county: migration 0029), which its alert takes; None: its case's
    region: str | None = None
    # a title and message of the kind's own for this finding (``VARIANTS``, e.g. "fine" for
    # a fee kind's finding on a penalty item); None: the rule's title and message
    variant: str | None = None
