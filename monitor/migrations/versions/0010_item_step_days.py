"""items.step_days: per-item working-day limits of single workflow steps (环节时限)

``{survey: 3, review: 5, ...}`` from the catalog; empty for items without step limits.
The ``overdue`` rule measures each limited step against it (see
monitor/rules/kinds/_step_limits.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_days', sa.JSON(), nullable=True))
    # items already stored have no step limits (as a catalog without the key gives them),
    # so re-ingesting an unchanged catalog reports them unchanged
    op.execute("UPDATE items SET step_days = '{}'")


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('step_days')
