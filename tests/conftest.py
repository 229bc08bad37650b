"""Shared fixtures: a store of its own per test, on SQLite by default or on the PostgreSQL
server named by $MONITOR_TEST_DATABASE_URL (CI's second pass), plus factories for the
catalog and event files a test needs.

Databases a test only reads from or starts from — the schema at its newest revision, a
demo county — are built once per session and copied for each test (a file copy on SQLite,
``CREATE DATABASE … TEMPLATE`` on PostgreSQL), so a test pays for a copy, not for the ten
migrations or the county's ingestion. A test of what happens on an empty database takes
``fresh_database``.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.catalog import ingest_catalog
from monitor.config import Config
from monitor.db import create_store_engine, open_store, scratch_database

NOW = datetime(2025, 11, 3, 2, 0, tzinfo=timezone.utc)
PG_URL = os.environ.get("MONITOR_TEST_DATABASE_URL")
PARTITIONED = bool(os.environ.get("MONITOR_TEST_PARTITIONED"))
FIXTURES = Path(__file__).with_name("fixtures")
T = TypeVar("T")

CATALOG = """\
departments:
  - {code: D04, name: 应急管理局}
  - {code: D07, name: 城市管理局}
users:
  - {id: u1, name: 张三, department: D04, roles: [clerk], phone: "13800000001"}
  - {id: u2, name: 李四, department: D04, roles: [chief, deputy], phone: "13800000002"}
items:
  - code: D04-XK-001
    name: 危险化学品安全生产许可
    department: D04
    category: license
    promised_days: 10
    legal_days: 20
    fee: 200
    min_minutes: {survey: 30, review: 5, approve: 5, decide: 5}
    min_case_minutes: 60
    required_attachments: {survey: [现场踏勘意见书]}
  - code: D07-CF-001
    name: 违反城市市容管理规定的处罚
    department: D07
    category: penalty
    promised_days: 5
    legal_days: 5
"""

EVENT_COLUMNS = ["event_id", "case_id", "item_code", "department", "step", "actor",
                 "occurred_at", "recorded_at", "amount", "channel", "attachments", "days", "note"]


def fresh_database(directory: Path):
    """A URL to an empty database that lasts for the ``with`` block: a SQLite file in
    ``directory``, or a new database on the server of $MONITOR_TEST_DATABASE_URL."""
    return scratch_database(directory, PG_URL)


_TEMPLATES: dict[str, tuple[str, Any]] = {}
_TEMPLATES_CLEANUP = ExitStack()


def template(name: str, build: Callable[[str, Path], T]) -> tuple[str, T]:
    """This session's database ``name``: (its URL, what ``build`` returned). Made on first
    use by ``build(url, folder)`` on an empty database (it must leave no connection open)
    and dropped when the session ends. Copy it with :func:`database_copy`; never write to
    it."""
    if name not in _TEMPLATES:
        folder = Path(tempfile.mkdtemp(prefix=f"pm-template-{name}-"))
        _TEMPLATES_CLEANUP.callback(shutil.rmtree, folder, ignore_errors=True)
        url = _TEMPLATES_CLEANUP.enter_context(fresh_database(folder))
        _TEMPLATES[name] = url, build(url, folder)
    return _TEMPLATES[name]


def pytest_sessionfinish(session, exitstatus):
    _TEMPLATES_CLEANUP.close()


def migrated_template() -> str:
    """The URL of this session's database with the schema at its newest revision, no rows;
    with $MONITOR_TEST_PARTITIONED set, on PostgreSQL, its events partitioned by county
    (monitor/partitions.py: a DEFAULT partition only, each county's made as it arrives)."""
    url, _ = template("schema", _migrated)
    return url


def _migrated(url: str, _folder: Path) -> None:
    engine = open_store(url)
    if PARTITIONED and engine.dialect.name == "postgresql":
        from monitor.partitions import partition_in

        with engine.begin() as conn:
            partition_in(conn)
    engine.dispose()


@contextmanager
def database_copy(template_url: str, directory: Path) -> Iterator[str]:
    """A URL to a copy of ``template_url`` that lasts for the ``with`` block: a SQLite file
    in ``directory``, or a database made from it as a template on the PostgreSQL server."""
    source = make_url(template_url)
    if source.get_backend_name() == "sqlite":
        path = Path(directory) / "scratch.db"
        for suffix in ("", "-wal"):  # a closed store has no -wal left; copy one if it has
            if Path(source.database + suffix).exists():
                shutil.copyfile(source.database + suffix, str(path) + suffix)
        yield f"sqlite:///{path}"
        return
    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"'))
        yield source.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _processes_only_in_slow_tests(request, monkeypatch):
    """A test that starts a process (the program, a browser) is marked ``slow``, so the
    quick loop (``pytest -m "not slow"``) leaves it out and CI still runs it; one that is
    not marked and tries fails here."""
    if request.node.get_closest_marker("slow") is None:
        def refuse(args, *_, **__):
            raise AssertionError(f"this test starts a process ({args!r}): mark it "
                                 "@pytest.mark.slow")

        monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture
def db_url(tmp_path):
    """A URL to a database of this test's own, its schema at the newest revision and no
    rows yet (a copy of one migrated once per session)."""
    with database_copy(migrated_template(), tmp_path) as url:
        yield url


@pytest.fixture
def empty_db_url(tmp_path):
    """A URL to an empty database, no schema at all, for this test only (migrations)."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url):
    """An engine on ``db_url`` (its schema is already at head: nothing to migrate)."""
    engine = create_store_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def config(tmp_path):
    return Config(path=None, base_dir=tmp_path, batch_size=50)


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return path


@pytest.fixture
def store(engine, catalog_file):
    """A store with the test catalog loaded."""
    ingest_catalog(engine, catalog_file)
    return engine


@pytest.fixture
def reference(tmp_path, catalog_file):
    """A second store with the test catalog, on SQLite on either pass, for the properties
    that compare incremental evaluation in ``store`` with full evaluation here (one per
    test: hypothesis's examples share it and empty it first)."""
    engine = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    ingest_catalog(engine, catalog_file)
    yield engine
    engine.dispose()


def event(event_id: str, case_id: str = "c1", step: str = "accept",
          occurred_at: str = "2025-09-30 10:00:00", **extra) -> dict:
    """One event row in the contract, with sensible defaults for a licence case."""
    row = {"event_id": event_id, "case_id": case_id, "item_code": "D04-XK-001",
           "step": step, "actor": "u1", "occurred_at": occurred_at}
    row.update(extra)
    return row


def events_writer(directory: Path):
    """write(rows, name='events.csv') → path of a CSV in the contract format in
    ``directory``."""

    def write(rows: list[dict], name: str = "events.csv") -> Path:
        path = directory / name
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=EVENT_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
        return path

    return write


@pytest.fixture
def write_events(tmp_path):
    """write_events(rows, name='events.csv') → path of a CSV in the contract format."""
    return events_writer(tmp_path)


# ------------------------------------------------------------ helpers for the rule kinds


def rule_file(tmp_path, text: str):
    """The rules of a one-off rule file (YAML ``text``) in ``tmp_path``."""
    from monitor.rules.loader import load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path])


def ingest_rows(store, config, write_events, rows, name="events.csv") -> None:
    """Write ``rows`` as a contract CSV and ingest it."""
    from monitor.ingest import ingest_events

    list(ingest_events(store, config, [str(write_events(rows, name))], NOW))


def dry_findings(store, config, rules, as_of) -> dict:
    """case_id → finding of one rule evaluated (dry run) as of ``as_of``."""
    from monitor.engine import evaluate

    [outcome] = evaluate(store, config, as_of, rules=rules, dry_run=True)
    assert outcome.error is None
    return {f.case_id: f for f in outcome.findings}


def pytest_collect_file(parent, file_path):
    """Golden rule tests: tests/rules/test_*.yaml (see golden_plugin.py)."""
    from golden_plugin import collect

    return collect(parent, file_path)


def stored_alerts(engine) -> dict:
    """dedupe key → (level, message, status) of every stored alert: what incremental and
    full runs over the same history must agree on (cleared and reopened alerts included)."""
    from sqlalchemy import select

    from monitor.models import Alert

    with engine.connect() as conn:
        return {a.dedupe_key: (a.level, a.message, a.status) for a in conn.execute(
            select(Alert.dedupe_key, Alert.level, Alert.message, Alert.status))}
