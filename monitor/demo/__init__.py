"""The demo county: a realistic sample, the same for the same seed, loaded the normal way.

``run_demo`` writes the four input files of a county supervision office into a folder —
``catalog.yaml`` (12 departments, their staff and 60 power items), ``events.csv`` (the
workflow log of ``cases`` permit and penalty cases, 2025-08-01 … 2026-01-31, across
National Day 2025 and its make-up working days), ``receipts.csv`` (what the treasury
received per department-month) and ``planted.json`` (the ground truth) — then ingests
them into a fresh SQLite store through the real ingestion functions.

Most cases are clean: accepted on a working day in office hours, each step after its
per-item minimum, finished within the promised limit in working days. A few percent carry
one planted anomaly each, and a few are *controls* that a naive rule would flag but that
are fine (a case straddling National Day, a suspended case, an extended case, an
authorised waiver). ``planted.json`` lists both, with the log's end (``as_of``): audit the
demo as of that moment, not today.

Only ``random.Random(seed)`` is used and nothing reads the clock: the files depend on
``seed`` and ``cases`` alone; ``now`` is only the ingestion timestamp.

The package, by concern: ``window`` (dates and office hours), ``catalog`` (departments,
staff, items), ``county`` (the random stream, the working days and the cases),
``scenarios`` (what is planted and how, and the plan handing each scenario its cases),
``timeline`` (each case's steps and events), ``files`` (the four files).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

from ..catalog import ApplyResult, ingest_catalog
from ..config import SHIPPED_RULES, Config
from ..db import open_store
from ..engine import RuleOutcome, evaluate
from ..ingest import (SourceResult, ingest_activity, ingest_events, ingest_receipts,
                      ingest_voice)
from .check import KindCheck, check
from .county import County
from .files import write_files
from .scenarios import plan
from .window import AS_OF, FIRST_DAY

__all__ = ["AS_OF", "MIN_CASES", "DemoResult", "Loaded", "load_demo", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    database_url: str
    files: dict[str, Path]
    catalog: ApplyResult
    events: list[SourceResult]
    receipts: list[SourceResult]
    planted: dict[str, int]            # anomaly kind → how many planted
    controls: dict[str, int]           # look-alikes no rule may flag → how many
    as_of: datetime                    # the end of the log: audit the demo as of this moment
    audit: list[RuleOutcome]           # the shipped rules evaluated as of ``as_of``
    checks: list[KindCheck]            # the audit against the ground truth, per kind


MIN_CASES = 60  # room for every planted scenario


@dataclass(frozen=True)
class Loaded:
    """The county written to its folder and ingested, before any rule has run."""

    directory: Path
    database_url: str
    config: Config
    files: dict[str, Path]
    truth: dict
    catalog: ApplyResult
    events: list[SourceResult]
    receipts: list[SourceResult]


# the evening before the window, at the nightly run's hour (monitor/demo/replay.py)
CATALOG_AT = datetime.combine(FIRST_DAY - timedelta(days=1), time(18), ZoneInfo("Asia/Shanghai"))


def load_demo(directory: str | Path, *, seed: int, cases: int, now: datetime,
              database_url: str | None = None) -> Loaded:
    """Generate the county into ``directory`` and ingest it into a fresh ``monitor.db``
    there (or into ``database_url``, an empty database: the tests' PostgreSQL pass)."""
    if cases < MIN_CASES:
        raise ValueError(f"the demo needs at least {MIN_CASES} cases, got {cases}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    county = County(seed, cases)
    plan(county)
    files, truth = write_files(directory, county)
    if database_url is None:
        db = directory / "monitor.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        database_url = f"sqlite:///{db.resolve()}"
    config = Config(path=None, base_dir=directory.resolve(), database_url=database_url,
                    rules_dir=SHIPPED_RULES)
    engine = open_store(database_url)
    try:
        # the catalog in force before the window's first day: on the trail before anything
        # else, at a fixed moment (the same seed, the same trail, to the hash)
        catalog = ingest_catalog(engine, files["catalog"], CATALOG_AT,
                                 source=Path(files["catalog"]).name)
        events = list(ingest_events(engine, config, [str(files["events"])], now))
        receipts = list(ingest_receipts(engine, config, [str(files["receipts"])], now))
        receipts += list(ingest_activity(engine, config, [str(files["activity"])], now))
        for kind in ("ratings", "complaints"):
            receipts += list(ingest_voice(kind, engine, config, [str(files[kind])], now))
    finally:
        engine.dispose()
    return Loaded(directory, database_url, config, files, truth, catalog, events, receipts)


def planted_counts(loaded: Loaded) -> tuple[dict[str, int], dict[str, int]]:
    """(anomaly kind → how many planted, look-alike kind → how many)."""
    truth = loaded.truth
    planted = {k: len(v) for k, v in truth["anomalies"].items()}
    planted["offline_penalties"] = len(truth["details"]["offline_penalties"]["gap_by_period"])
    return planted, {k: len(v) for k, v in truth["controls"].items()}


def run_demo(directory: str | Path, *, seed: int, cases: int, now: datetime) -> DemoResult:
    """Generate the county into ``directory``, load it into a fresh ``monitor.db`` there and
    audit it as of the log's end."""
    loaded = load_demo(directory, seed=seed, cases=cases, now=now)
    engine = open_store(loaded.database_url)
    try:
        audit = evaluate(engine, loaded.config, AS_OF)
    finally:
        engine.dispose()
    planted, controls = planted_counts(loaded)
    return DemoResult(loaded.directory, loaded.database_url, loaded.files, loaded.catalog,
                      loaded.events, loaded.receipts, planted, controls, AS_OF, audit,
                      check(loaded.truth, audit))
