"""open_cases.due_on and basis: when an open case's finding can next change by time alone,
so that a run on a new date looks at the cases whose date has come, not every open case

* ``open_cases.due_on`` (date, nullable): the first local date on which the case's
  finding may differ from the one its last judgment gave — a deadline crossed, the
  advance warning reached, the case gone stale (monitor/rules/kinds/_overdue_open.py).
  NULL — rows stored before, and cases a rule cannot date — is looked at on every new
  date, as every open case was.
* ``open_cases.basis`` (text, nullable): a digest of what that date was computed under
  (the catalog's limits, the calendars, ``stale_days``, the rule's messages); a row
  whose basis is not the run's is looked at again.

Revision ID: 0032
Revises: 0030
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0032'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('open_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('basis', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('open_cases', schema=None) as batch_op:
        batch_op.drop_column('basis')
        batch_op.drop_column('due_on')
