"""The control center (行权控制中心): the web UI and the JSON API, an entry point like
cli.py. Only this package imports FastAPI, Starlette and uvicorn; it calls the library
(monitor.center, monitor.accounts, monitor.authz) and renders what it returns.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from ..config import Config
from .app import create_app
from .workers import FACTORY, Origin

__all__ = ["Origin", "create_app", "serve"]


def serve(engine: Engine, config: Config, origin: Origin, host: str, port: int,
          workers: int = 1) -> None:
    """Run the control center with uvicorn until SIGINT/SIGTERM: in this process on
    ``engine`` and ``config`` (``workers`` 1), or in ``workers`` processes on the one
    socket, each building its own application from ``origin`` (monitor/web/workers.py)."""
    import uvicorn

    app: FastAPI | str = FACTORY
    if workers == 1:
        app = create_app(engine, config, origin.clock())
    else:
        engine.dispose()  # the workers have their own; this process only supervises them
        origin.export()
    uvicorn.run(app, factory=workers > 1, workers=workers, host=host, port=port,
                log_level="info", proxy_headers=True, server_header=False)
