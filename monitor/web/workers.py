"""The control center in several worker processes (``permit-monitor web --workers N``).

One process runs its Python work — the gate's decisions, the pages — on one core. With
``--workers N`` uvicorn's supervisor starts N processes that share the listening socket,
and each builds its own application with :func:`app_from_environment` (an application
factory: uvicorn imports :data:`FACTORY` in every worker and calls it), so each has its
own engine and connection pool, its own gate :class:`~monitor.gateguard.Guard` and
thread pool, its own rule cache.

A worker starts from what the parent resolved, never from a fresh look at the command
line: the :class:`Origin` — the database URL, the config file, the ``--as-of`` clock
start, the log level — goes to the children in one environment variable of their own,
:data:`ENV` (the environment is where this program takes secrets from: the URL may hold
a password; it is registered for masking in each worker as in the parent, and never
echoed). bench/gate.py serves its benchmark through the same factory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI

from ..errors import MonitorError
from .app import create_app, utcnow

log = logging.getLogger(__name__)

ENV = "MONITOR_WEB_WORKER"  # private to the parent and its worker processes
FACTORY = "monitor.web.workers:app_from_environment"


@dataclass(frozen=True)
class Origin:
    """What every worker builds its application from.

    ``as_of``/``began``: the clock started at ``as_of`` when :func:`time.monotonic` read
    ``began`` (one system-wide clock, so every worker's clock shows the same moment); no
    ``as_of``: the real time."""

    database_url: str
    config_path: str | None = None  # None: no config file (./config.yaml absent: defaults)
    as_of: str | None = None  # ISO 8601 with its offset
    began: float | None = None
    log_level: int = logging.WARNING

    @classmethod
    def starting(cls, database_url: str, config_path: str | None, as_of: datetime | None,
                 log_level: int) -> Origin:
        """The origin of a server starting now (its clock at ``as_of``, if given)."""
        return cls(database_url, config_path, as_of.isoformat() if as_of else None,
                   time.monotonic() if as_of else None, log_level)

    def clock(self) -> Callable[[], datetime]:
        if self.as_of is None:
            return utcnow
        start, began = datetime.fromisoformat(self.as_of), self.began or 0.0
        return lambda: start + timedelta(seconds=time.monotonic() - began)

    def export(self) -> None:
        """Put this origin where the worker processes (started after this) find it."""
        os.environ[ENV] = json.dumps(asdict(self))


def app_from_environment() -> FastAPI:
    """The application of one worker process, built from the :class:`Origin` in :data:`ENV`
    (uvicorn calls it in each worker: ``factory=True``).

    A worker that cannot start (the store down when it is started again after a crash, the
    config file broken since) says why in one line and exits 1; uvicorn's supervisor starts
    it again a few seconds later, while the other workers go on serving."""
    from ..config import load_config, resolve_database_url
    from ..db import open_store
    from ..logs import configure, use_zone

    origin = Origin(**json.loads(os.environ[ENV]))
    configure(origin.log_level)
    try:
        config = load_config(origin.config_path)
        use_zone(config.tz)
        url = resolve_database_url(config, origin.database_url)  # its password: masked
        # the parent made sure the store exists and its schema is current: only connect
        engine = open_store(url, create=False, upgrade=False)
    except MonitorError as exc:
        log.error("web worker %d cannot start: %s", os.getpid(), exc)
        raise SystemExit(1) from None
    return create_app(engine, config, origin.clock())
