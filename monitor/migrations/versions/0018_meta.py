"""meta: facts about the store itself, one row per key

The first key is ``audit_as_of``: the moment a database's data describe (ISO 8601, UTC),
set by ``permit-monitor demo`` to the end of the sample county's log, so that ``run``,
``escalate`` and ``alerts list --overdue`` without ``--as-of`` audit the demo as of its
own moment and not as of today (monitor/meta.py).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'meta',
        sa.Column('key', sa.String(length=64), primary_key=True),
        sa.Column('value', sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('meta')
