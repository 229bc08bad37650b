"""Alembic environment: runs on the connection permit-monitor hands it.

Autogenerate a new revision during development with:
    alembic -c monitor/migrations/alembic.ini revision --autogenerate -m "what changed"
"""

from alembic import context
from sqlalchemy import create_engine

from monitor.models import Base
from monitor.types import Money, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Freeze project types as plain SQL types, so old revisions never change meaning."""
    if type_ == "type" and isinstance(obj, Money):
        return "sa.BigInteger()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


OPTIONS = dict(target_metadata=target_metadata, render_as_batch=True, render_item=render_item)


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()


run()
