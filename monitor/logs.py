"""One formatter for every log line the program writes: its time in the county's time
zone, with the offset (``2026-02-01T18:00:03+08:00``), as text or as JSON lines.

Log lines used to mix the server's zone (UTC on most servers, from ``asctime``) with the
county's (in messages): an operator reading a failure at 18:00 Beijing time saw 10:00.
The zone is UTC until the configuration is read, then the configured ``timezone``
(:func:`use_zone`, called by the CLI as it loads config.yaml). Configured by the entry
points only; the library just logs.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone, tzinfo

from .masking import MaskingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CountyTime(logging.Formatter):
    """Times in the zone given to :func:`use_zone` (shared by every handler)."""

    zone: tzinfo = timezone.utc

    def __init__(self, json_lines: bool = False):
        super().__init__(FORMAT)
        self.json_lines = json_lines

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        at = datetime.fromtimestamp(record.created, CountyTime.zone)
        return at.isoformat(timespec="seconds")

    def format(self, record: logging.LogRecord) -> str:
        if not self.json_lines:
            return super().format(record)
        out = {"time": self.formatTime(record), "level": record.levelname.lower(),
               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def use_zone(zone: tzinfo) -> None:
    """Log times from now on in ``zone`` (the configured ``timezone``)."""
    CountyTime.zone = zone


def configure(level: int) -> None:
    """Log lines to stderr at ``level``, in county time, no secret in any (the start of
    the CLI and of each web worker process)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CountyTime())
    logging.basicConfig(level=level, handlers=[handler])
    for each in logging.getLogger().handlers:  # no secret in a log line, in any form
        each.addFilter(MaskingFilter())
    if level > logging.DEBUG:  # Alembic's plugin set-up lines would bury what -vv is for
        logging.getLogger("alembic").setLevel(logging.WARNING)


def json_lines() -> None:
    """Every handler writes JSON lines from now on (``--log-json``)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(CountyTime(json_lines=True))
