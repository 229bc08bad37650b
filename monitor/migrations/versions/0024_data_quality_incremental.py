"""data_quality goes incremental: its next run must be a full one

The ``data_quality`` rule now evaluates incrementally and, like ``overdue``, keeps the
cases it saw open and not yet stale (``open_cases``) to look at again when the date
moves: a case goes stale with no new event. A store upgraded from a version that judged
every case every time holds a watermark for the rule but no such list, so its next
incremental run would miss the cases going stale. Rules' watermarks are reset (as 0012
did when ``open_cases`` came): each rule's next run is a full one, which fills the list.
Nothing else changes; the downgrade has nothing to undo.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""
from alembic import op


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM rule_state")


def downgrade() -> None:
    pass
