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
no answer (:class:`Unverified`). On PostgreSQL each statement of a gate transaction is
also limited to the budget (``statement_timeout``), so the work of an answer already
given up on stops soon after.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from . import accounts, authz
from .config import Config
from .errors import MonitorError
from .gate import Verdict, degraded
from .gatelog import ask, log_degraded
from .rules.model import Rule

log = logging.getLogger(__name__)

TOKEN_MEMORY = 600  # seconds a token the store accepted is trusted for a degraded answer


class Unauthenticated(MonitorError):
    """No token, or one the store does not know (revoked, expired): HTTP 401."""


class Unverified(MonitorError):
    """The store could not check the caller's token in time, and it is not one it has
    accepted lately: no answer (HTTP 503)."""


class Guard:
    """Gate answers within the budget, for one process (the web app holds one)."""

    def __init__(self, engine: Engine, config: Config, rules: Callable[[], list[Rule]]):
        self.engine, self.config, self.rules = engine, config, rules
        self.budget = config.gate.budget_ms / 1000
        self.pool = ThreadPoolExecutor(config.gate.workers, thread_name_prefix="gate")
        self.later = ThreadPoolExecutor(1, thread_name_prefix="gate-log")
        self.known: dict[str, tuple[float, str]] = {}  # token digest → (when accepted, by whom)
        self.lock = threading.Lock()

    def _limit(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL statement_timeout = {int(self.budget * 1000)}"))

    def _work(self, token: str, raw: Any, at: datetime, given_up: threading.Event) -> Verdict:
        actor = accounts.token_actor(self.engine, token, at)
        if actor is None:
            raise Unauthenticated("invalid or expired token")
        authz.check(actor, authz.GATE)
        with self.lock:
            self.known[_digest(token)] = (time.monotonic(), actor.id)
        return ask(self.engine, self.config, self.rules(), raw, at, actor.id, "api",
                   before=self._limit, wanted=lambda: not given_up.is_set())

    def answer(self, token: str, raw: Any, at: datetime) -> Verdict:
        """The verdict on ``raw`` for the holder of ``token``, within the budget."""
        given_up = threading.Event()
        future = self.pool.submit(self._work, token, raw, at, given_up)
        try:
            return future.result(timeout=self.budget)
        except FuturesTimeout:
            given_up.set()  # its verdict, should it come, is not the answer: not logged
            future.cancel()  # not started yet: it never will be
            why = f"no answer within {self.config.gate.budget_ms} ms"
        except DBAPIError as exc:
            why = str(exc.orig or exc).splitlines()[0]
        asked_by = self._trusted(token)
        if asked_by is None:
            raise Unverified(f"the store cannot check the token now ({why})")
        verdict = degraded(self.config.gate.fail, at, raw)
        log.warning("gate: degraded answer %s to %s (%s)", verdict.decision, asked_by, why)
        self.later.submit(log_degraded, self.engine, verdict, asked_by, "api", at,
                          self.config.gate.budget_ms)
        return verdict

    def _trusted(self, token: str) -> str | None:
        """Who holds ``token``, if the store accepted it lately."""
        with self.lock:
            seen = self.known.get(_digest(token))
        return seen[1] if seen and time.monotonic() - seen[0] < TOKEN_MEMORY else None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.later.shutdown(wait=False)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
