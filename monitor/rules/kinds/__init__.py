"""The registry of rule kinds: one module each, chosen by name from this table only.

Every kind module meets :class:`Kind`: it declares ``TITLE``, ``DEFAULT_MESSAGE``,
``FIELDS`` (what a message may use, besides :data:`COMMON_FIELDS`), a frozen ``Params``
dataclass with typed defaults, and ``detect(conn, rule, ctx) -> Iterator[Finding]``:
set-based SQL over the store. Modules whose names start with ``_`` are helpers the kinds
share, not kinds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection

from ..finding import Context, Finding
from ..model import Rule
from . import case_too_fast, late_entry, same_actor_roles, step_too_fast
from . import fee_reconciliation, fee_waiver, unpaid_fee
from . import batch_entry, missing_attachment
from . import overdue
from . import hold_violated
from . import inactive_monitor
from . import bad_rating, complaint, rating_contradiction, ranking_last, volume_drop
from . import data_quality
from . import sequence


@runtime_checkable
class Kind(Protocol):
    """What the loader and the engine use of a kind module (``rules explain`` and ``rules
    backtest`` run kinds through the engine).

    ``CLEARED`` (a sentence) is optional too, read through :func:`clears`: its alerts are
    cleared (复查销号) when their case no longer gives the finding (monitor/clearing.py).
    Three flags are optional, read through :func:`incremental`, :func:`after_others` and
    :func:`by_case`: ``INCREMENTAL = False`` (the engine hands the kind every event, not
    only those new since its last run), ``AFTER_OTHERS = True`` (it runs after the other
    rules, and sees the alerts they raised in the same run) and ``BY_CASE = True`` (its
    findings are per case and depend on that case's events alone, so an incremental run
    over many changed cases may be made in rounds of them). ``WORKING_DAYS = True``
    (read through :func:`working_days`): its findings count working days in
    ``ctx.calendar``.

    A kind that is not incremental but judges periods that are over may define two
    functions, read through :func:`periodic`: ``mark(conn, rule, ctx) -> str`` notes what a
    pass judges besides the events (the months, and figures no event watermark covers);
    ``unchanged(conn, rule, ctx) -> bool``, given an incremental ``ctx``, says whether the
    events stored since the last pass (and anything else it reads) leave its answer as it
    was. When the mark is the last pass's and ``unchanged`` is true, the engine skips the
    pass: a full one would find exactly what the last one found.

    ``REGIONAL = True`` (optional, read through :func:`regional`): the kind reads only
    events (and the catalog) and finds each county's findings from that county's events
    alone, keeping no state of its own — so a store of several counties may be evaluated
    one county per process (``run --jobs``, monitor/parallel.py), each seeing its own
    events only.

    ``GATE`` (optional, read through :func:`gate_effects`): the effects a rule of the kind
    may ask for at the workflow gate (``("deny", "warn")``, or ``("warn",)``); a kind
    without it is not checked there. Such a kind must find a case's findings from that
    case's events when ``ctx.changed_case_ids`` lists it, and keep no state when
    ``ctx.probe`` is set (the gate's rolled-back look at one case).
    """

    @property
    def TITLE(self) -> str: ...              # the rule's title unless its file gives one

    @property
    def DEFAULT_MESSAGE(self) -> str: ...    # the alert text unless the file gives one

    @property
    def FIELDS(self) -> tuple[str, ...]: ...  # the fields a message may name

    @property
    def Params(self) -> type[Any]: ...       # frozen dataclass: the kind's typed params

    def detect(self, conn: Connection, rule: Rule, ctx: Context) -> Iterable[Finding]:
        """The findings of ``rule`` as of ``ctx.as_of``, read with ``conn``."""
        ...


KINDS: dict[str, Kind] = {
    "step_too_fast": step_too_fast,
    "late_entry": late_entry,
    "case_too_fast": case_too_fast,
    "same_actor_roles": same_actor_roles,
    "unpaid_fee": unpaid_fee,
    "fee_waiver": fee_waiver,
    "fee_reconciliation": fee_reconciliation,
    "batch_entry": batch_entry,
    "missing_attachment": missing_attachment,
    "overdue": overdue,
    "inactive_monitor": inactive_monitor,
    "hold_violated": hold_violated,
    "bad_rating": bad_rating,
    "complaint": complaint,
    "rating_contradiction": rating_contradiction,
    "volume_drop": volume_drop,
    "ranking_last": ranking_last,
    "data_quality": data_quality,
    "sequence": sequence,
}

COMMON_FIELDS = ("case_id", "actor", "department", "item_code", "period", "level",
                 "rule_id", "title")


def data_quality_kinds() -> frozenset[str]:
    """Kinds whose findings are about the data, not conduct: reported apart, never a
    deduction in the scores (``DATA_QUALITY = True``)."""
    return frozenset(name for name, kind in KINDS.items()
                     if getattr(kind, "DATA_QUALITY", False))


def incremental(kind: Kind) -> bool:
    """Whether the engine may give ``kind`` only what changed since its last run."""
    return bool(getattr(kind, "INCREMENTAL", True))


def periodic(kind: Kind) -> bool:
    """Whether an incremental pass may skip ``kind`` when nothing it reads has changed
    (``mark`` and ``unchanged``: see :class:`Kind`)."""
    return callable(getattr(kind, "mark", None)) and callable(getattr(kind, "unchanged", None))


def regional(kind: Kind) -> bool:
    """Whether ``kind`` may be evaluated one county at a time (``REGIONAL``)."""
    return bool(getattr(kind, "REGIONAL", False))


def by_case(kind: Kind) -> bool:
    """Whether an incremental run of ``kind`` over some changed cases finds the findings of
    runs over each part of them, put together."""
    return bool(getattr(kind, "BY_CASE", False))


def clears(kind: Kind, params: Any = None) -> str | None:
    """Why an alert of ``kind`` (a rule with ``params``) is cleared when its case,
    re-evaluated, no longer gives the finding (``CLEARED``, in Chinese, for the trail);
    None: it never clears (see monitor/clearing.py). A kind whose clearing depends on a
    parameter says so with ``clears_when(params)``."""
    reason = getattr(kind, "CLEARED", None)
    when = getattr(kind, "clears_when", None)
    return reason if reason and (when is None or when(params)) else None


def working_days(kind: Kind) -> bool:
    """Whether ``kind`` counts working days (``WORKING_DAYS = True``: its findings depend on
    ``ctx.calendar``), so a county with a calendar of its own is judged apart by it
    (monitor/regionrules.py); a kind without it judges every county in one pass."""
    return bool(getattr(kind, "WORKING_DAYS", False))


def after_others(kind: Kind) -> bool:
    """Whether ``kind`` runs after the other rules of a run (it reads their alerts)."""
    return bool(getattr(kind, "AFTER_OTHERS", False))


def gate_effects(kind: Kind) -> tuple[str, ...]:
    """What a rule of ``kind`` may ask the workflow gate to do (empty: it is not gated)."""
    return tuple(getattr(kind, "GATE", ()))
