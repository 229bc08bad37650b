"""A small county for the control center's tests: two departments with their monitors, the
county office (two tier-2 monitors), a leader, one red alert in D04 on case c1 — and
hostile text in names, a department and an event's note, to be shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from conftest import NOW, database_copy, event, events_writer, template
from monitor import accounts
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.models import Alert
from monitor.rules.loader import load_rules

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
CATALOG = f"""\
departments:
  - {{code: D04, name: '应急管理局{HOSTILE}'}}
  - {{code: D07, name: 城市管理局}}
  - {{code: JW, name: 县纪委监委}}
users:
  - {{id: u1, name: 张三, department: D04, roles: [clerk]}}
  - {{id: m4, name: '王监察{HOSTILE}', department: D04, roles: [monitor_l1]}}
  - {{id: m7, name: 赵监察, department: D07, roles: [monitor_l1]}}
  - {{id: k1, name: 县监察一, department: JW, roles: [monitor_l2]}}
  - {{id: k2, name: 县监察二, department: JW, roles: [monitor_l2]}}
  - {{id: boss, name: 县领导, department: JW, roles: [leader]}}
items:
  - {{code: D04-XK-001, name: 危险化学品安全生产许可, department: D04, category: license,
     promised_days: 10, legal_days: 20}}
  - {{code: D07-XK-001, name: 城市道路挖掘许可, department: D07, category: license,
     promised_days: 5, legal_days: 20}}
"""
RULES = "- {id: fast, kind: step_too_fast, level: red, title: 环节办理过快}\n"
RAISED = datetime(2025, 9, 30, 8, 0, tzinfo=timezone.utc)
AT = datetime(2025, 10, 9, 1, 30, tzinfo=timezone.utc)   # 09:30 local, a working day
PASSWORD = "长城-Great-Wall-7"
USERS = ("m4", "m7", "k1", "k2", "boss")


@dataclass
class County:
    engine: object
    config: object
    alert: int
    case: str = "c1"


def build_county(engine, config, tmp_path, write_events) -> County:
    """The county, its alert raised, and a password for every monitor and the leader."""
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    path = write_events([event("a1", "c1", "accept", "2025-09-30 10:00:00"),
                         event("a2", "c1", "survey", "2025-09-30 10:00:58", note=HOSTILE)])
    list(ingest_events(engine, config, [str(path)], NOW))
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "fast.yaml").write_text(RULES, encoding="utf-8")
    evaluate(engine, config, RAISED, rules=load_rules([rules_dir]))
    for user in USERS:
        accounts.set_password(engine, user, PASSWORD, RAISED, "admin:test", must_change=False)
    with engine.connect() as conn:
        return County(engine, config, conn.scalar(select(Alert.id)))


def _built_once(url: str, folder: Path) -> int:
    """The county in the session's template database: its alert's id."""
    from monitor.config import Config
    from monitor.db import open_store

    engine = open_store(url)
    try:
        config = Config(path=None, base_dir=folder, batch_size=50, rules_dir=folder / "rules")
        return build_county(engine, config, folder, events_writer(folder)).alert
    finally:
        engine.dispose()


@contextmanager
def county_copy(folder: Path, config) -> Iterator[County]:
    """The county for the ``with`` block: a copy of one built once per session (by a test
    that makes password hashes cheap, as every web test does), its rule file in
    ``folder``, and ``config`` reading it."""
    from monitor.db import create_store_engine

    url, alert = template("web-county", _built_once)
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "fast.yaml").write_text(RULES, encoding="utf-8")
    with database_copy(url, folder) as copy:
        engine = create_store_engine(copy)
        try:
            yield County(engine, replace(config, rules_dir=folder / "rules"), alert)
        finally:
            engine.dispose()


def clock(start: datetime = AT):
    """A clock that starts at ``start`` and runs (sessions, lockouts, actions in order)."""
    import time

    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


# ---------------------------------------------------------------- a real server, a real browser

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving ``app`` on 127.0.0.1 and a free port, in a thread, until stop()."""

    def __init__(self, app, lifespan: str = "off"):
        import threading

        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()
