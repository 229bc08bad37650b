"""What the benches share: a fresh store at ``--url`` (SQLite or PostgreSQL), bulk writes
of stored-form rows into it, and the server's share of the cost (CPU and peak RSS of the
PostgreSQL backends serving the run).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TICK = os.sysconf("SC_CLK_TCK")


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def store_url(url: str | None, folder: Path, name: str) -> str:
    """``url``, or a SQLite file ``name`` in ``folder`` when none is given."""
    return url or f"sqlite:///{folder / name}"


def fresh_store(url: str) -> str:
    """Empty the store at ``url`` and return it: a SQLite file is deleted, a PostgreSQL
    database (the one the URL names) is dropped and created again on its server."""
    parsed = make_url(url)
    if not is_postgres(url):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return url
    _admin(url, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)',
           f'CREATE DATABASE "{parsed.database}"')
    return url


def drop_store(url: str) -> None:
    parsed = make_url(url)
    if is_postgres(url):
        _admin(url, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)


def _admin(url: str, *statements: str) -> None:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for sql in statements:
            conn.execute(text(sql))
    admin.dispose()


def psycopg_dsn(url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL."""
    parsed = make_url(url)
    parts = {"host": parsed.host, "port": parsed.port, "user": parsed.username,
             "password": parsed.password, "dbname": parsed.database}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


def _proc(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, peak RSS bytes) of a local process, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        hwm = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK, int(hwm.split()[1]) * 1024


class ServerMeter:
    """CPU time and peak RSS of every PostgreSQL backend (parallel workers included) of
    one database while the block runs: sampled from /proc every ``interval`` seconds, so
    the server must run on this machine; a worker's last sample may miss its last
    ``interval`` of CPU. Peak RSS (VmHWM) counts the shared buffers a backend touched.
    On SQLite it measures nothing (the work is in the client process)."""

    def __init__(self, url: str, interval: float = 0.05):
        self.url, self.interval = url, interval
        self.cpu: dict[int, float] = {}
        self.start_cpu: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "ServerMeter":
        if is_postgres(self.url):
            import psycopg

            self._conn = psycopg.connect(psycopg_dsn(self.url), autocommit=True)
            self._own = self._conn.info.backend_pid
            for pid, (cpu, _) in self._sample().items():
                self.start_cpu[pid] = cpu
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> dict[int, tuple[float, int]]:
        pids = [pid for (pid,) in self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> %s", (self._own,))]
        out = {}
        for pid in pids:
            got = _proc(pid)
            if got is not None:
                out[pid] = got
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), got[0])
                self.peak_rss = max(self.peak_rss, got[1])
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
            self._conn.close()

    @property
    def cpu_seconds(self) -> float:
        return sum(cpu - self.start_cpu.get(pid, 0.0) for pid, cpu in self.cpu.items())

    def figures(self) -> dict:
        if self._thread is None:
            return {}
        return {"server_cpu_seconds": round(self.cpu_seconds, 2),
                "server_peak_rss_mb": round(self.peak_rss / 2**20)}


def peak_rss_mb() -> int:
    """This process's peak RSS (VmHWM) in MB. Not ``getrusage``: Linux carries its
    ``ru_maxrss`` across exec, so a child of a big parent would report the parent's."""
    return round(_proc(os.getpid())[1] / 2**20)


def timed(fn, *args, **kwargs):
    """(result, wall seconds, client CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu
