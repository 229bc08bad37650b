"""The lease lock on a fixed clock: one holder at a time, expiry, a dead holder's lease."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from conftest import NOW
from monitor.lease import (LeaseBusy, MAIN, acquire, current, machine, release, renew,
                           try_acquire)

TTL = timedelta(seconds=120)


def at(seconds: float):
    return lambda: NOW + timedelta(seconds=seconds)


def test_one_holder_at_a_time_until_release(engine):
    a = acquire(engine, MAIN, "hostA:1:a", at(0), TTL, 0)
    assert a.previous is None
    with pytest.raises(LeaseBusy) as busy:
        acquire(engine, MAIN, "hostB:2:b", at(10), TTL, 0)
    assert str(busy.value).startswith("another run holds the lock 'monitor' (hostA:1:a, until "
                                      "2025-11-03T02:02:00+00:00); waited 0 s.")
    assert acquire(engine, MAIN, "hostA:1:a", at(20), TTL, 0)  # re-entrant for its holder
    release(engine, a, NOW + timedelta(seconds=30))
    b = acquire(engine, MAIN, "hostB:2:b", at(31), TTL, 0)
    assert b.previous is None and current(engine).holder == "hostB:2:b"


def test_a_lease_that_is_not_renewed_expires(engine):
    a = acquire(engine, MAIN, "hostA:1:a", at(0), TTL, 0)
    assert renew(engine, a, NOW + timedelta(seconds=100), TTL)  # now until 220 s
    assert not try_acquire(engine, MAIN, "hostB:2:b", NOW + timedelta(seconds=200), TTL)[0]
    b = acquire(engine, MAIN, "hostB:2:b", at(221), TTL, 0)
    assert b.previous == "hostA:1:a"
    assert not renew(engine, a, NOW + timedelta(seconds=222), TTL)  # A lost it


@pytest.mark.slow
def test_a_dead_process_on_this_host_lets_go_at_once(engine):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = f"{machine()}:{gone.stdout.strip()}:x"
    acquire(engine, MAIN, dead, at(0), TTL, 0)
    taken = acquire(engine, MAIN, "me:3:c", at(1), TTL, 0)  # long before it would expire
    assert taken.previous == dead


def test_the_wait_is_bounded(engine):
    import time

    acquire(engine, MAIN, "hostA:1:a", at(0), TTL, 0)
    started = time.monotonic()
    with pytest.raises(LeaseBusy, match="waited 0.5 s"):
        acquire(engine, MAIN, "hostB:2:b", at(1), TTL, 0.5)
    assert 0.5 <= time.monotonic() - started < 2
