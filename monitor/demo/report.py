"""The demo's closing document: the monthly report (通报) of the log's last month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import SHIPPED_RULES, Config
from ..db import open_store
from ..report import build_report, parse_period, write_documents
from ..rulenames import titles
from ..rules.loader import load_rules
from ..report.labels import labeler
from ..report.model import fmt_value

PERIOD = "2026-01"  # the last month of the demo's log (it ends at AS_OF)


@dataclass(frozen=True)
class DemoReport:
    period: str
    html: Path
    xlsx: Path
    summary: list[str]
    worst: list[str]


def demo_report(url: str, directory: str | Path, now: datetime) -> DemoReport:
    directory = Path(directory)
    config = Config(path=None, base_dir=directory.resolve(), database_url=url)
    engine = open_store(url)
    try:
        rep = build_report(engine, config, parse_period(PERIOD), now,
                           titles=titles(config, load_rules([SHIPPED_RULES])))
    finally:
        engine.dispose()
    html, xlsx = write_documents(rep, directory)
    label = labeler(config.language)
    summary = [f"{label(k)} {fmt_value(v, 'pct' if k.endswith('rate') else 'int')}"
               for k, v in rep.summary.items()]
    rows = sorted(rep.tables["t_findings"].rows, key=lambda r: (-r["findings"], r["department"]))
    worst = [f"{r['name']} {r['findings']}（{label('red')} {r['red']}）" for r in rows[:3]
             if r["findings"]]
    return DemoReport(PERIOD, html, xlsx, summary, [" · ".join(worst)] if worst else [])
