"""A lease lock in the database: one runner at a time (a cron ``nightly``, the ``serve``
daemon, a hand-started ``run``), on SQLite and PostgreSQL alike.

A lease is a row (``leases``) naming its holder (``host:pid:token``) and when it expires.
Taking it is one conditional UPDATE — free, expired, or held by a process on this host
that no longer exists — so two runners can never both succeed. While held, a thread
renews it every third of its time; a process that is killed stops renewing, and its lease
expires ``lease_seconds`` later (at once for the next runner on the same host, which sees
that the pid is gone). A second runner polls for at most ``wait_seconds``, then gives up
with :class:`LeaseBusy`, a one-line error.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .errors import MonitorError
from .models import Lease

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MAIN = "monitor"  # the one lease every evaluating job takes
FREE = ""
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
POLL_SECONDS = 0.25


class LeaseBusy(MonitorError):
    """Another runner holds the lease and did not let go within the wait."""


@dataclass(frozen=True)
class Held:
    name: str
    holder: str
    previous: str | None  # the holder whose lease this one replaced, if it had not let go


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(holder: str) -> bool:
    """True if ``holder`` was a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def try_acquire(engine: Engine, name: str, holder: str, now: datetime,
                ttl: timedelta) -> tuple[bool, str, datetime | None]:
    """One attempt: (taken, the holder before, its expiry). Never waits."""
    with engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(Lease).values(name=name, holder=FREE, acquired_at=now,
                                                  expires_at=EPOCH).on_conflict_do_nothing())
        row = conn.execute(select(Lease).where(Lease.name == name)).one()
        free = [Lease.expires_at <= now, Lease.holder == FREE, Lease.holder == holder]
        if row.holder not in (FREE, holder) and row.expires_at > now and _dead_here(row.holder):
            free.append(Lease.holder == row.holder)
        taken = conn.execute(update(Lease).where(Lease.name == name, or_(*free)).values(
            holder=holder, acquired_at=now, expires_at=now + ttl)).rowcount == 1
    return taken, row.holder, row.expires_at


def acquire(engine: Engine, name: str, holder: str, clock: Clock, ttl: timedelta,
            wait_seconds: float) -> Held:
    """Take the lease, polling for at most ``wait_seconds``; :class:`LeaseBusy` if not."""
    deadline = time.monotonic() + wait_seconds
    while True:
        taken, before, expires = try_acquire(engine, name, holder, clock(), ttl)
        if taken:
            previous = before if before not in (FREE, holder) else None
            if previous:
                log.warning("took over lease %r from %s, which did not let go", name, previous)
            return Held(name, holder, previous)
        if time.monotonic() >= deadline:
            until = expires.isoformat(timespec="seconds") if expires else "?"
            raise LeaseBusy(f"another run holds the lock '{name}' ({before}, until {until}); "
                            f"waited {wait_seconds:g} s. It ends when that run finishes (or "
                            "expires if it died); raise lease_wait_seconds to wait longer")
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))


def renew(engine: Engine, held: Held, now: datetime, ttl: timedelta) -> bool:
    with engine.begin() as conn:
        return conn.execute(update(Lease).where(Lease.name == held.name,
                                                Lease.holder == held.holder)
                            .values(expires_at=now + ttl)).rowcount == 1


def release(engine: Engine, held: Held, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(Lease).where(Lease.name == held.name, Lease.holder == held.holder)
                     .values(holder=FREE, expires_at=now))


@contextmanager
def hold(engine: Engine, name: str, holder: str, clock: Clock, ttl: timedelta,
         wait_seconds: float) -> Iterator[Held]:
    """Hold the lease for the ``with`` block, renewed in the background; released after."""
    held = acquire(engine, name, holder, clock, ttl, wait_seconds)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                if not renew(engine, held, clock(), ttl):
                    log.error("lost the lease %r: another runner took it", name)
                    return
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("could not renew the lease %r", name)

    beat = threading.Thread(target=heartbeat, name=f"lease-{name}", daemon=True)
    beat.start()
    try:
        yield held
    finally:
        stop.set()
        beat.join()
        release(engine, held, clock())


def current(engine: Engine, name: str = MAIN):
    with engine.connect() as conn:
        return conn.execute(select(Lease).where(Lease.name == name)).one_or_none()
