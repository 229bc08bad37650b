"""The gate's log writer: allow and warn lines written in batches, off the request path.

A ``deny`` is logged in its own request before it is answered — its ``gate_log`` row and
its trail entry committed — so the workflow system never hears a refusal the store does
not hold. An ``allow`` or a ``warn`` is answered at once and its line handed to the one
writer thread of the process's :class:`~monitor.gateguard.Guard`, which writes all the
lines queued since its last transaction in one transaction (at most :data:`BATCH`): the
request pays neither a commit nor, on SQLite, a turn at the store's one write lock for it.

**What is guaranteed.** Every answered allow and warn is in ``gate_log`` once the
writer's next transaction commits — under load a few milliseconds after the answer, the
time one batch takes. When the process stops normally (the web server's shutdown closes
the guard, :meth:`LogWriter.close`), the writer writes everything queued before it
returns. A crash of the process (killed, out of memory, power lost) loses the allow and
warn lines still queued — the decisions answered since the writer's last commit — and
never a deny. If the store refuses a batch (down, locked past its timeout), the writer
says so in the log and tries the same lines again every :data:`RETRY` seconds, keeping
what arrives meanwhile; at close it tries :data:`LAST_TRIES` times more, then logs how many
lines it could not write.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert

from .gate import Verdict
from .gatelog import log_row
from .models import GateLog

log = logging.getLogger(__name__)

BATCH = 500  # lines at most in one transaction
IDLE = 1.0  # seconds without a line after which the thread ends (the next line starts one)
RETRY = 1.0  # seconds between tries of a batch the store refused
LAST_TRIES = 3  # tries of what is left when the writer is closed
_STOP, _IDLE = object(), object()
_INSERT = insert(GateLog)  # built once; executed with a list of rows (one executemany)


class LogWriter:
    """One thread writing queued ``gate_log`` lines into ``engine`` in batches. The thread
    is started by the first line and ends after :data:`IDLE` seconds without one, so an
    idle process keeps no thread of it (a process with one thread may fork: the ingest's
    second reader, monitor/ingest/worker.py)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.written = 0  # lines committed so far
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()  # a line is never queued with no thread to write it

    def put(self, verdict: Verdict, asked_by: str, channel: str, at: datetime,
            elapsed_ms: int | None) -> None:
        """Queue the line of an answered allow or warn (a deny is never queued)."""
        if verdict.decision == "deny":
            raise ValueError("a deny is logged before it is answered, not queued")
        row = log_row(verdict, asked_by, channel, at, elapsed_ms)
        with self.lock:
            self.queue.put(row)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="gate-log-writer",
                                               daemon=True)
                self.thread.start()

    def close(self, timeout: float = 30) -> None:
        """Write everything queued, then stop the thread (at most ``timeout`` seconds)."""
        with self.lock:
            thread = self.thread
            if thread is None:
                return  # nothing queued: the thread ends only on an empty queue
            self.queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error("gate: the log writer did not finish within %s s", timeout)

    def _next(self) -> Any:
        """The next queued item, or _IDLE once IDLE seconds pass without one (the thread
        is then let go, under the lock, so that the next line starts another)."""
        while True:
            try:
                return self.queue.get(timeout=IDLE)
            except queue.Empty:
                with self.lock:
                    if self.queue.empty():
                        self.thread = None
                        return _IDLE

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        closing = False
        while True:
            if not batch and not closing:
                item = self._next()
                if item is _IDLE:
                    return  # nothing queued, and put() starts a new thread for what comes
                if item is _STOP:
                    closing = True
                else:
                    batch.append(item)
            while len(batch) < BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    closing = True
                else:
                    batch.append(item)
            if not batch:
                return  # closing, and nothing left
            if self._write(batch, LAST_TRIES if closing else None):
                batch = []
            elif closing:
                return

    def _write(self, batch: list[dict[str, Any]], tries: int | None) -> bool:
        """Commit ``batch``: retried every RETRY s (``tries`` times at most if given)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.begin() as conn:
                    conn.execute(_INSERT, batch)
                self.written += len(batch)
                return True
            except Exception as exc:  # the store failed: say so, keep the lines, try again
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                if tries is not None and attempt >= tries:
                    log.error("gate: %d log lines could not be written: %s",
                              len(batch), reason)
                    return False
                log.error("gate: could not write %d log lines, trying again in %s s: %s",
                          len(batch), RETRY, reason)
                time.sleep(RETRY)
