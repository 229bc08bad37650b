"""A lease lock in the database: one runner at a time (a cron ``nightly``, the ``serve``
daemon, a hand-started ``run``), on SQLite and PostgreSQL alike.

A lease is a row (``leases``) naming its holder and when it expires. Taking it is one
conditional UPDATE — free, expired, or held by a process on this machine that no longer
exists — so two runners can never both succeed. A holder is ``host:boot:pidns:pid:nonce``
(:func:`new_holder`): the host name alone is not an identity (containers share one, and
two of them each saw the other's pid as dead and stole its lease); "this machine" is the
same host name, kernel boot id and pid namespace.

While held, a thread renews it every third of its time. A holder that could not renew
(paused past the lifetime, the database away) and finds another holder in its place has
*lost* it: :attr:`Held.lost` is set, :meth:`Held.check` raises :class:`LeaseLost`, and
every audit commit (the trail, run records, deliveries) checks the lease's **fencing
token** — raised each time the lease changes hands — in its own transaction
(:func:`fence`), so a runner that lost the lease cannot write another trail entry or
send again: its transaction rolls back and the work stops.

A process that is killed stops renewing, and its lease expires ``lease_seconds`` later (at
once for the next runner on the same machine, which sees that the pid is gone). A second
runner polls for at most ``wait_seconds``, then gives up with :class:`LeaseBusy`, a
one-line error. Two leases exist: :data:`MAIN` (evaluation, escalation, ingestion) and
:data:`OUTBOX` (delivery), so a slow sink never holds up a run, and one flusher at a time
delivers, across processes and machines.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .errors import MonitorError
from .models import Lease

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MAIN = "monitor"  # the lease every evaluating job takes
OUTBOX = "outbox"  # the lease a flusher takes: one delivers at a time
FREE = ""
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
POLL_SECONDS = 0.25


class LeaseBusy(MonitorError):
    """Another runner holds the lease and did not let go within the wait."""


class LeaseLost(MonitorError):
    """This runner's lease was taken by another: its work stops (nothing more committed)."""


@dataclass(frozen=True)
class Held:
    name: str
    holder: str
    previous: str | None  # the holder whose lease this one replaced, if it had not let go
    token: int = 0  # the fencing token this holder got
    lost: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    def check(self) -> None:
        """Raise :class:`LeaseLost` if the heartbeat found the lease taken by another."""
        if self.lost.is_set():
            raise LeaseLost(f"the lock '{self.name}' was taken over by another run; this "
                            "run stops here (what it committed stays, nothing more)")


_FENCE: ContextVar[Held | None] = ContextVar("lease_fence", default=None)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def machine() -> str:
    """``host:boot:pidns`` — where a pid means one process (boot id and pid namespace
    from /proc where there is one; ``-`` elsewhere)."""
    boot = _read("/proc/sys/kernel/random/boot_id").replace("-", "")[:12] or "-"
    try:
        ns = re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "-"
    except OSError:
        ns = "-"
    return f"{socket.gethostname()}:{boot}:{ns}"


def new_holder() -> str:
    return f"{machine()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(holder: str) -> bool:
    """True if ``holder`` was a process on this machine (host, boot, pid namespace) that
    no longer exists. A holder of another machine, or in the old ``host:pid:nonce`` form,
    is never judged dead: its lease expires instead."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != machine() or "-" in parts[0].split(":")[1:]:
        return False
    pid = parts[1]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def try_acquire(engine: Engine, name: str, holder: str, now: datetime,
                ttl: timedelta) -> tuple[bool, str, datetime | None, int]:
    """One attempt: (taken, the holder before, its expiry, the token now). Never waits."""
    with engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(Lease).values(name=name, holder=FREE, acquired_at=now,
                                                  expires_at=EPOCH, token=0)
                     .on_conflict_do_nothing())
        row = conn.execute(select(Lease).where(Lease.name == name)).one()
        free = [Lease.expires_at <= now, Lease.holder == FREE, Lease.holder == holder]
        if row.holder not in (FREE, holder) and row.expires_at > now and _dead_here(row.holder):
            free.append(Lease.holder == row.holder)
        raise_token = Lease.token if row.holder == holder else Lease.token + 1
        taken = conn.execute(update(Lease).where(Lease.name == name, or_(*free)).values(
            holder=holder, acquired_at=now, expires_at=now + ttl,
            token=raise_token)).rowcount == 1
        token = (conn.scalar(select(Lease.token).where(Lease.name == name)) or 0) if taken \
            else 0
    return taken, row.holder, row.expires_at, token


def acquire(engine: Engine, name: str, holder: str, clock: Clock, ttl: timedelta,
            wait_seconds: float) -> Held:
    """Take the lease, polling for at most ``wait_seconds``; :class:`LeaseBusy` if not."""
    deadline = time.monotonic() + wait_seconds
    while True:
        taken, before, expires, token = try_acquire(engine, name, holder, clock(), ttl)
        if taken:
            previous = before if before not in (FREE, holder) else None
            if previous:
                log.warning("took over lease %r from %s, which did not let go", name, previous)
            return Held(name, holder, previous, token)
        if time.monotonic() >= deadline:
            until = expires.isoformat(timespec="seconds") if expires else "?"
            raise LeaseBusy(f"another run holds the lock '{name}' ({before}, until {until}); "
                            f"waited {wait_seconds:g} s. It ends when that run finishes (or "
                            "expires if it died); raise lease_wait_seconds to wait longer")
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))


def renew(engine: Engine, held: Held, now: datetime, ttl: timedelta) -> bool:
    with engine.begin() as conn:
        return conn.execute(update(Lease).where(Lease.name == held.name,
                                                Lease.holder == held.holder,
                                                Lease.token == held.token)
                            .values(expires_at=now + ttl)).rowcount == 1


def release(engine: Engine, held: Held, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(Lease).where(Lease.name == held.name, Lease.holder == held.holder,
                                         Lease.token == held.token)
                     .values(holder=FREE, expires_at=now))


def handed() -> tuple[str, str, int] | None:
    """(name, holder, token) of the lease this context holds, to hand to a worker process
    of the same run (:func:`adopted`); None outside a lease."""
    held = _FENCE.get()
    return None if held is None else (held.name, held.holder, held.token)


@contextmanager
def adopted(lease: tuple[str, str, int] | None) -> Iterator[None]:
    """In a worker process of a run that holds ``lease`` (:func:`handed`): every audit
    commit checks that lease and its token (:func:`fence`) as the holder's own would, so a
    run that lost its lease writes no more from its workers either. The holder renews it."""
    if lease is None:
        yield
        return
    context = _FENCE.set(Held(*lease[:2], None, lease[2]))
    try:
        yield
    finally:
        _FENCE.reset(context)


def fence(conn: Connection) -> None:
    """In a transaction about to commit an audit write: if this context holds a lease
    (:func:`hold`), it must still be this holder's, with its token; else
    :class:`LeaseLost` (the caller's transaction rolls back). Outside a lease (a person
    acting through the web) nothing is checked."""
    held = _FENCE.get()
    if held is None:
        return
    held.check()
    query = select(Lease.token).where(Lease.name == held.name, Lease.holder == held.holder,
                                      Lease.token == held.token)
    if conn.dialect.name == "postgresql":
        # a taker's UPDATE waits until this commit is done; a share lock, so that the
        # workers of one run (monitor/parallel.py) do not wait on each other's commits
        query = query.with_for_update(read=True)
    if conn.scalar(query) is None:
        held.lost.set()
        held.check()


@contextmanager
def hold(engine: Engine, name: str, holder: str, clock: Clock, ttl: timedelta,
         wait_seconds: float) -> Iterator[Held]:
    """Hold the lease for the ``with`` block, renewed in the background and checked at
    every audit commit inside it (:func:`fence`); released after."""
    held = acquire(engine, name, holder, clock, ttl, wait_seconds)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                if not renew(engine, held, clock(), ttl):
                    held.lost.set()
                    log.error("lost the lease %r: another runner took it; this run stops "
                              "at its next commit", name)
                    return
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("could not renew the lease %r", name)

    beat = threading.Thread(target=heartbeat, name=f"lease-{name}", daemon=True)
    beat.start()
    context = _FENCE.set(held)
    try:
        yield held
    finally:
        _FENCE.reset(context)
        stop.set()
        beat.join()
        release(engine, held, clock())


def current(engine: Engine, name: str = MAIN):
    with engine.connect() as conn:
        return conn.execute(select(Lease).where(Lease.name == name)).one_or_none()
