"""rule_state.mark: what a periodic kind last judged, so that an incremental pass can tell
that nothing it reads has changed and skip it

* ``rule_state.mark`` (text, nullable): a kind's own note of its inputs at its last full
  pass (``ranking_last``: the last month judged, the trail's length over every chain and
  the scorecard's weights). NULL — rows stored before, and kinds that keep none — never
  matches, so the next pass judges in full once.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rule_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mark', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rule_state', schema=None) as batch_op:
        batch_op.drop_column('mark')
