"""Opening the store: engine creation, connectivity check, schema migrations.

The schema is created and upgraded by Alembic (``monitor/migrations``) on first use, so
a later schema change never forces users to drop their data.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from .errors import StoreError
from .files import OWNER_ONLY_FILE
from .masking import mask

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def safe_url(url: str) -> str:
    """The URL with its password masked (``user:pass@`` and ``?password=``), for
    messages and logs."""
    try:  # a password given as ?password= is not SQLAlchemy's to hide: mask() does
        return mask(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _postgresql_session(dbapi_conn, _record) -> None:
    """No JIT for the store's sessions: the detectors run many complex statements, and
    PostgreSQL's JIT compiled one incremental batch-entry query for 1.4 s of its 1.45 s
    (bench/README.md); over a full evaluation it saved nothing measurable."""
    with dbapi_conn.cursor() as cur:
        cur.execute("SET jit = off")
    dbapi_conn.commit()  # a SET rolled back with its transaction would not last


def create_store_engine(url: str, create: bool = True) -> Engine:
    """An engine for ``url``; a bad URL or missing driver is a :class:`StoreError`.

    ``create``: a SQLite file that does not exist yet is made here, readable by its owner
    only; False leaves the disk untouched (a reading command refuses a missing store)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {url!r} (e.g. sqlite:///monitor.db or "
                         "postgresql+psycopg://user@host/db)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported database {safe_url(url)}: use SQLite (sqlite:///file.db) "
                         "or PostgreSQL (postgresql+psycopg://user@host/db)")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"cannot open database {safe_url(url)}: folder {folder} does not exist")
        file = Path(parsed.database).expanduser()
        if create and not file.exists():  # created readable by its owner only (names, ids, amounts)
            os.close(os.open(file, os.O_CREAT | os.O_WRONLY, OWNER_ONLY_FILE))
    try:
        engine = create_engine(parsed)
    except NoSuchModuleError:
        raise StoreError(f"unsupported database driver in {safe_url(url)}: use sqlite:/// or "
                         "postgresql+psycopg://") from None
    except ImportError as exc:
        raise StoreError(f"database driver missing for {safe_url(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        event.listen(engine, "connect", _postgresql_session)
    return engine


def _alembic_config(connection, region: str | None = None):
    """Alembic's config for a run on ``connection``; ``region``: the deployment's, which a
    migration stamps on the rows it gives a region (0026)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["region"] = region
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


MIGRATION_WAIT = 30  # seconds a process waits for another one's migration to finish


def ensure_schema(engine: Engine, region: str | None = None) -> bool:
    """Create or upgrade the schema to the newest revision; True if anything changed.
    ``region``: the deployment's (config ``region``), for the rows a migration stamps.

    Two processes started together on a new database (two cron passes) race to create
    it: the one that loses waits for the other's migration to finish instead of failing.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return False
    if current is None and inspect(engine).has_table("events"):
        if _migrated_by_another(engine, head):
            return False
        raise StoreError("the database has permit-monitor tables but no migration record; "
                         "it was not created by this program")
    from alembic import command

    log.info("upgrading database schema %s → %s", current or "(empty)", head)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn, region), "head")
    except DBAPIError:
        if _migrated_by_another(engine, head):
            return False
        raise
    return True


def _migrated_by_another(engine: Engine, head: str) -> bool:
    """Wait (bounded) for a concurrent migration to reach ``head``."""
    deadline = time.monotonic() + MIGRATION_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            if current_revision(engine) == head:
                return True
        except DBAPIError:
            continue
    return False


HOW_TO_CREATE = ("create one with `permit-monitor init` (or `permit-monitor demo`), or point to "
                 "one with --db URL or MONITOR_DATABASE_URL")


def _refuse_missing(url: str, engine: Engine) -> None:
    """A command that only reads or acts on a store refuses one that does not exist (an
    absent or empty SQLite file, a database without permit-monitor's schema) instead of
    creating it and answering from nothing."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
        path = Path(database).expanduser()
        if not path.is_file() or path.stat().st_size == 0:
            engine.dispose()
            raise StoreError(f"no database at {safe_url(url)}: {HOW_TO_CREATE}")
    if current_revision(engine) is None:
        engine.dispose()
        raise StoreError(f"database {safe_url(url)} has no permit-monitor schema: "
                         f"{HOW_TO_CREATE}")


def open_store(url: str, create: bool = True, upgrade: bool = True,
               region: str | None = None) -> Engine:
    """Connect, check the server answers, and bring the schema up to date.

    ``region``: the deployment's county (config ``region``); a migration that gives
    existing rows a region (0026) gives them this one, unset ``000000`` ("not yet named").

    ``create=False``: refuse a store that does not exist yet (see :func:`_refuse_missing`);
    only the commands that create a store (``init``, ``demo``, ``ingest``, ``nightly``,
    ``serve``) pass True. ``upgrade=False``: leave the schema as it is (a read-only look)."""
    engine = create_store_engine(url, create=create)
    try:
        if not create:
            _refuse_missing(url, engine)
        if upgrade:
            ensure_schema(engine, region)
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(f"cannot use database {safe_url(url)}: {reason}") from None
    return engine


@contextmanager
def scratch_database(directory: Path, server_url: str | None = None) -> Iterator[str]:
    """A URL to an empty database that lasts for the ``with`` block: a SQLite file in
    ``directory``, or (``server_url``: a PostgreSQL role that may create databases) a new
    database on that server, dropped afterwards. For golden tests and the test suite."""
    if not server_url:
        yield f"sqlite:///{Path(directory) / 'scratch.db'}"
        return
    from sqlalchemy import text

    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
