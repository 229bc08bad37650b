"""The gate's time budget: the workflow system is never left hanging.

The web app asks the gate through one :class:`Guard`. Each request's work — checking the
bearer token, the verdict, its log line — runs on a pool of ``gate.workers`` threads and
is waited for ``gate.budget_ms``. If the store has not answered by then (down, locked,
overloaded) or fails (a connection refused), the answer is the degraded one —
``allow`` (``gate.fail: open``) or ``deny`` (``closed``), marked ``"degraded": true`` —
logged at once to the log and, when the store takes writes again, to ``gate_log``.

A token is checked against the store; one the store has accepted in the last
:data:`TOKEN_MEMORY` seconds is remembered (by its SHA-256) so that a degraded answer goes
only to the workflow system's own token: a token the store cannot vouch for in time gets
no answer (:class:`Unverified`). Within :data:`TOKEN_RECHECK` seconds of its last check
the token is not looked up again (a round trip and a transaction per decision saved): a
token revoked, or one that expires, is refused from that many seconds later at most.
Every decision's ``gate_log`` line is written by the guard's one log writer thread, in
batches (group commit, monitor/gatewriter.py, which states what that guarantees): an
allow's or a warn's after its answer; a deny's, with its trail entry, before it — its
answer waits, off the gate's threads, for the commit of the batch that holds it.
:meth:`Guard.close` (the web server's shutdown) writes every queued line. What the
decisions read of the catalog whole is kept between them while the store's catalog
version stays the same (monitor/catalogmemo.py).

On PostgreSQL the guard has connections of its own (:func:`limited`) whose every
statement is limited to the budget (``statement_timeout``, set once per connection), so
the work of an answer already given up on stops soon after; the log lines (the log
writer's batches, the degraded answers') go through connections of their own too
(:func:`unstuck`), not limited: a deny's answer waits for its batch within the budget,
and gets the degraded answer if the batch takes longer. On both, a transaction left idle
for :data:`IDLE_IN_TRANSACTION_MS` is ended by the server (``idle_in_transaction_session_timeout``):
a deny's log line takes the trail's write lock (monitor/trail.py), and a guard cut off by
the network between that lock and its commit — the server still sees the connection —
would otherwise hold the lock, and stop every other append to the trail (a token made, a
run, an alert acted on), until the kernel gives up on the connection, hours later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from . import accounts, authz
from .catalogmemo import CatalogMemo
from .config import Config
from .db import create_store_engine
from .errors import MonitorError
from .gate import Verdict, degraded
from .gatelog import ask, log_degraded
from .gateprobe import shadowed
from .gatewriter import LogWriter
from .regionrules import RuleSets
from .rules.model import Rule

log = logging.getLogger(__name__)

TOKEN_MEMORY = 600  # seconds a token the store accepted is trusted for a degraded answer
TOKEN_RECHECK = 5  # seconds a token the store accepted is not looked up again
# PostgreSQL ends a guard's transaction left idle this long (its locks freed); its own
# transactions run no code of ours between statements longer than a few milliseconds
IDLE_IN_TRANSACTION_MS = 10_000


class Unauthenticated(MonitorError):
    """No token, or one the store does not know (revoked, expired): HTTP 401."""


class Unverified(MonitorError):
    """The store could not check the caller's token in time, and it is not one it has
    accepted lately: no answer (HTTP 503)."""


class Guard:
    """Gate answers within the budget, for one process (the web app holds one)."""

    def __init__(self, engine: Engine, config: Config,
                 rules: Callable[[], list[Rule] | RuleSets]):
        self.store, self.config, self.rules = engine, config, rules
        self.engine = limited(engine, config.gate.budget_ms)
        self.budget = config.gate.budget_ms / 1000
        self.pool = ThreadPoolExecutor(config.gate.workers, thread_name_prefix="gate")
        self.later = ThreadPoolExecutor(1, thread_name_prefix="gate-log")
        # token digest → (when the store accepted it, who holds it)
        self.known: dict[str, tuple[float, authz.Actor]] = {}
        self.catalog = CatalogMemo()  # the catalog's whole-table reads, per its version
        self.lock = threading.Lock()
        # allow and warn lines, written after their answer (monitor/gatewriter.py)
        self.writes = unstuck(engine)  # the log lines' connections
        self.writer = LogWriter(self.writes)

    def _work(self, token: str, raw: Any, at: datetime,
              given_up: threading.Event) -> tuple[Verdict, Future | None]:
        """The verdict, and for a deny the future of its line's commit (the answer waits
        for it, off this thread: a gate thread is free for the next look meanwhile)."""
        digest = _digest(token)
        with self.lock:
            seen = self.known.get(digest)
        if seen is not None and time.monotonic() - seen[0] < TOKEN_RECHECK:
            actor = seen[1]
        else:
            found = accounts.token_actor(self.engine, token, at)
            if found is None:
                with self.lock:
                    self.known.pop(digest, None)
                raise Unauthenticated("invalid or expired token")
            authz.check(found, authz.GATE)  # only the gate's own tokens are remembered
            actor = found
            with self.lock:
                self.known[digest] = (time.monotonic(), actor)
        committed: list[Future | None] = []

        def hand(verdict: Verdict, asked_by: str, channel: str, when: datetime,
                 elapsed_ms: int | None) -> None:
            committed.append(self.writer.put(verdict, asked_by, channel, when, elapsed_ms,
                                             answer_waits=verdict.decision == "deny",
                                             wanted=lambda: not given_up.is_set()))

        verdict = ask(self.engine, self.config, self.rules(), raw, at, actor.id, "api",
                      wanted=lambda: not given_up.is_set(), memo=self.catalog, later=hand)
        return verdict, (committed[0] if committed else None)

    def _submit(self, token: str, raw: Any, at: datetime,
                given_up: threading.Event) -> tuple[Future, Future]:
        """(the look's job on the pool, the answer: its verdict once the job is done and,
        for a deny, its line committed by the log writer)."""
        job = self.pool.submit(self._work, token, raw, at, given_up)
        answer: Future = Future()

        def settle(source: Future, verdict: Verdict | None = None) -> None:
            if answer.done():
                return  # given up on (cancelled by the waiting side)
            try:
                if source.cancelled():
                    answer.cancel()
                elif source.exception() is not None:
                    answer.set_exception(source.exception())
                elif verdict is not None:
                    answer.set_result(verdict)
                else:
                    verdict, committed = source.result()
                    if committed is None:
                        answer.set_result(verdict)
                    else:
                        committed.add_done_callback(lambda c: settle(c, verdict))
            except InvalidStateError:
                pass  # cancelled by the waiting side meanwhile: nobody waits for it

        job.add_done_callback(settle)
        return job, answer

    def answer(self, token: str, raw: Any, at: datetime) -> Verdict:
        """The verdict on ``raw`` for the holder of ``token``, within the budget."""
        given_up = threading.Event()
        job, answer = self._submit(token, raw, at, given_up)
        try:
            return answer.result(timeout=self.budget)
        except FuturesTimeout:
            why = self._give_up(job, given_up)
        except DBAPIError as exc:
            why = _failure(exc)
        return self._degraded(token, raw, at, why)

    async def answer_async(self, token: str, raw: Any, at: datetime) -> Verdict:
        """:meth:`answer` for the web app's event loop: the request waits for the pool's
        thread, and a deny for its line's commit, without holding a thread of its own."""
        given_up = threading.Event()
        job, answer = self._submit(token, raw, at, given_up)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(answer), self.budget)
        except asyncio.TimeoutError:
            why = self._give_up(job, given_up)
        except DBAPIError as exc:
            why = _failure(exc)
        return self._degraded(token, raw, at, why)

    def _give_up(self, job: Future, given_up: threading.Event) -> str:
        given_up.set()  # its verdict, should it come, is not the answer: not logged
        job.cancel()  # not started yet: it never will be
        return f"no answer within {self.config.gate.budget_ms} ms"

    def _degraded(self, token: str, raw: Any, at: datetime, why: str) -> Verdict:
        asked_by = self._trusted(token)
        if asked_by is None:
            raise Unverified(f"the store cannot check the token now ({why})")
        verdict = degraded(self.config.gate.fail, at, raw)
        log.warning("gate: degraded answer %s to %s (%s)", verdict.decision, asked_by, why)
        self.later.submit(log_degraded, self.writes, verdict, asked_by, "api", at,
                          self.config.gate.budget_ms)
        return verdict

    def _trusted(self, token: str) -> str | None:
        """Who holds ``token``, if the store accepted it lately."""
        with self.lock:
            seen = self.known.get(_digest(token))
        return seen[1].id if seen and time.monotonic() - seen[0] < TOKEN_MEMORY else None

    def close(self) -> None:
        """Stop: the decisions under way finish (each within the budget's statement
        timeout on PostgreSQL), then every queued log line is written."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.writer.close()
        self.later.shutdown(wait=True)
        for engine in {self.engine, self.writes} - {self.store}:
            engine.dispose()


def limited(engine: Engine, budget_ms: int) -> Engine:
    """PostgreSQL: an engine of its own on the same database whose connections limit every
    statement to ``budget_ms`` (set once, when a connection is made: a ``SET LOCAL`` per
    transaction was two of a decision's ~15 round trips). SQLite: an engine of its own
    whose connections look without writing (monitor/gateprobe.py)."""
    if engine.dialect.name != "postgresql":
        return shadowed(engine)
    return _with_settings(engine, statement_timeout=int(budget_ms),
                          idle_in_transaction_session_timeout=IDLE_IN_TRANSACTION_MS)


def unstuck(engine: Engine) -> Engine:
    """PostgreSQL: an engine of its own on the same database whose transactions the server
    ends when left idle for :data:`IDLE_IN_TRANSACTION_MS` (see the module's docstring);
    SQLite (no network between): ``engine`` itself."""
    if engine.dialect.name != "postgresql":
        return engine
    return _with_settings(engine, idle_in_transaction_session_timeout=IDLE_IN_TRANSACTION_MS)


def _with_settings(engine: Engine, **settings: int) -> Engine:
    """A new engine on ``engine``'s database whose connections start with ``settings``
    (each ``-c name=value`` once per connection, not a ``SET`` per transaction)."""
    given = engine.url.query.get("options") or ()
    options = " ".join([*((given,) if isinstance(given, str) else given),
                        *(f"-c {name}={value}" for name, value in settings.items())])
    return create_store_engine(engine.url.update_query_dict({"options": options})
                               .render_as_string(hide_password=False))


def _failure(exc: DBAPIError) -> str:
    return str(exc.orig or exc).splitlines()[0]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
