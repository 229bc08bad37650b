"""real logs: time precision and system events on events, a policy per item

* ``events.time_precision``: the finest unit ``occurred_at`` was written in (``minute``,
  ``hour``, ``day``; NULL: to the second, as every event stored before). Rules never rest
  a finding on a span finer than this.
* ``events.is_system``: an activity a mapping lists as a system event (an automatic
  check, a receipt confirmation the platform sends): kept, shown, never a workflow step.
* ``items.policy``: what an item's rules go by beyond its limits (the step each minimum
  runs from, the pairs of steps that must be done by different people, the decision and
  end steps); NULL: the rules' defaults, as before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy on SQLite: a rebuilt table would lose the
    # expression index ix_events_dated)
    op.add_column('events', sa.Column('time_precision', sa.String(length=6), nullable=True))
    op.add_column('events', sa.Column('is_system', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.add_column('items', sa.Column('policy', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('items', 'policy')
    op.drop_column('events', 'is_system')
    op.drop_column('events', 'time_precision')
