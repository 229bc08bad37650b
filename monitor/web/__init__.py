"""The control center (行权控制中心): the web UI and the JSON API, an entry point like
cli.py. Only this package imports FastAPI, Starlette and uvicorn; it calls the library
(monitor.center, monitor.accounts, monitor.authz) and renders what it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from ..config import Config
from .app import create_app, utcnow

__all__ = ["create_app", "serve"]


def serve(engine: Engine, config: Config, host: str, port: int,
          clock: Callable[[], datetime] = utcnow) -> None:
    """Run the control center with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    uvicorn.run(create_app(engine, config, clock), host=host, port=port, log_level="info",
                proxy_headers=True, server_header=False)
