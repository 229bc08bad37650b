"""The gate's log writer: every answered decision's ``gate_log`` line, and each deny's trail
entry, written in batches by one thread (group commit).

A web process's gate decisions (monitor/gateguard.py) hand their lines to the one writer
thread of its :class:`~monitor.gateguard.Guard`, which writes all the lines queued since
its last transaction in one transaction (at most :data:`BATCH`) of a few statements
whatever its size: the ``gate_log`` rows of the allows and warns in one ``executemany``,
the denies' rows in one ``INSERT … RETURNING`` and their trail entries (``gate_denied``)
in one append, each at its own request's time (monitor/gatelog.py
:func:`~monitor.gatelog.record_many`). A statement per deny (eight, with its trail
append) was many round trips through the GIL for the one writer thread, which waits for
it behind the gate threads' Python at every statement. The gate's threads never write,
so they never wait for the store's write lock (on SQLite one writer at a time: 8 threads
each committing its own deny slept in SQLite's busy handler, in steps that grow to
100 ms) and never wait for each other's commits; the writer takes the lock once per batch
for all of them.

**A deny is answered only after its batch commits**: :meth:`LogWriter.put` gives a deny a
:class:`~concurrent.futures.Future` that the answer waits for (``answer_waits``), set when
the transaction holding its ``gate_log`` row and its trail entry has committed — so the
workflow system never hears a refusal the store does not hold, as before. If the store
refuses the batch, a waiting deny's future carries the error and its line is dropped from
the batch (its request gets the degraded answer, logged as such); a deny whose answer was
given up on before its batch began (``wanted``) is not written (the degraded answer given
instead is what is logged).

**An allow or a warn is answered at once**: its line is in ``gate_log`` once the writer's
next transaction commits — under load a few milliseconds after the answer, the time one
batch takes. When the process stops normally (the web server's shutdown closes the guard,
:meth:`LogWriter.close`), the writer writes everything queued before it returns. A crash
of the process (killed, out of memory, power lost) loses the allow and warn lines still
queued — the decisions answered since the writer's last commit — and never a deny. If the
store refuses a batch (down, locked past its timeout), the writer says so in the log and
tries the allow and warn lines again every :data:`RETRY` seconds, keeping what arrives
meanwhile; at close it tries :data:`LAST_TRIES` times more, then logs how many lines it
could not write.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Engine, insert

from .gate import Verdict
from .gatelog import log_row, record_many
from .models import GateLog

log = logging.getLogger(__name__)

BATCH = 500  # lines at most in one transaction
IDLE = 1.0  # seconds without a line after which the thread ends (the next line starts one)
RETRY = 1.0  # seconds between tries of a batch the store refused
LAST_TRIES = 3  # tries of what is left when the writer is closed
_STOP, _IDLE = object(), object()
_INSERT = insert(GateLog)  # built once; executed with a list of rows (one executemany)


@dataclass
class _Line:
    """One queued decision: its ``gate_log`` row, and for a deny what its trail entry
    needs (``record``'s arguments) and the future its answer waits for."""

    row: dict[str, Any]
    deny: tuple[Verdict, str, str, datetime, int | None] | None = None
    done: Future | None = None
    wanted: Callable[[], bool] = lambda: True


class LogWriter:
    """One thread writing queued ``gate_log`` lines (and denies' trail entries) into
    ``engine`` in batches. The thread is started by the first line and ends after
    :data:`IDLE` seconds without one, so an idle process keeps no thread of it (a process
    with one thread may fork: the ingest's second reader, monitor/ingest/worker.py)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.written = 0  # lines committed so far
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()  # a line is never queued with no thread to write it

    def put(self, verdict: Verdict, asked_by: str, channel: str, at: datetime,
            elapsed_ms: int | None, answer_waits: bool = False,
            wanted: Callable[[], bool] = lambda: True) -> Future | None:
        """Queue a decision's line. ``answer_waits`` (a deny, before its answer): the
        future set once its line and trail entry are committed (or to the store's error);
        ``wanted``: false once its answer was given up on (not written then). Otherwise
        (an answered allow or warn, a degraded answer): None, written with the next batch."""
        line = _Line(log_row(verdict, asked_by, channel, at, elapsed_ms))
        if verdict.decision == "deny":
            line.deny = (verdict, asked_by, channel, at, elapsed_ms)
        if answer_waits:
            line.done, line.wanted = Future(), wanted
        with self.lock:
            self.queue.put(line)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="gate-log-writer",
                                               daemon=True)
                self.thread.start()
        return line.done

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
        batch: list[_Line] = []
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
            batch = [line for line in batch if _still_wanted(line)]
            if not batch:
                if closing:
                    return  # closing, and nothing left
                continue
            batch = self._write(batch, LAST_TRIES if closing else None)
            if batch and closing:
                return

    def _write(self, batch: list[_Line], tries: int | None) -> list[_Line]:
        """Commit ``batch`` (retried every RETRY s, ``tries`` times at most if given):
        what is left of it unwritten — nothing, or, when the tries ran out, the lines
        no answer waits for (a waiting deny fails at the first refusal: its request is
        answered degraded)."""
        attempt = 0
        while batch:
            attempt += 1
            try:
                with self.engine.begin() as conn:  # a few statements, whatever the size
                    plain = [line.row for line in batch if line.deny is None]
                    if plain:
                        conn.execute(_INSERT, plain)
                    denied = [line.deny for line in batch if line.deny is not None]
                    if denied:
                        record_many(conn, denied)
                self.written += len(batch)
                for line in batch:
                    if line.done is not None:
                        line.done.set_result(None)
                return []
            except Exception as exc:  # the store failed: say so, keep the lines, try again
                for line in batch:
                    if line.done is not None:
                        line.done.set_exception(exc)
                batch = [line for line in batch if line.done is None]
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                if tries is not None and attempt >= tries:
                    log.error("gate: %d log lines could not be written: %s",
                              len(batch), reason)
                    return batch
                if batch:
                    log.error("gate: could not write %d log lines, trying again in %s s: %s",
                              len(batch), RETRY, reason)
                    time.sleep(RETRY)
        return []


def _still_wanted(line: _Line) -> bool:
    """False (and its future cancelled) for a deny whose answer was given up on."""
    if line.done is None or line.wanted():
        return True
    line.done.cancel()
    return False
