"""fee_reconciliation incremental: a partial index on online-payment lookups, and the
event watermark of each receipts row

* ``ix_events_fee_paid`` (``department, occurred_at, channel, amount``, only rows with
  ``step = 'fee_paid'``, about one event in ten): a department-month's online total is a
  range of this index, read without touching the table.
* ``receipts.event_mark``: the largest ``events.id`` stored when the row was last
  written. A rule run whose event watermark is at or below it may not have seen the
  figure, so the next run re-checks that department-month. Rows already stored get the
  current largest id: re-checked once by the next run.

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FEE_PAID = sa.text("step = 'fee_paid'")


def upgrade() -> None:
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_mark', sa.Integer(), nullable=True))
    op.execute("UPDATE receipts SET event_mark = (SELECT coalesce(max(id), 0) FROM events)")
    op.create_index('ix_events_fee_paid', 'events',
                    ['department', 'occurred_at', 'channel', 'amount'], unique=False,
                    sqlite_where=FEE_PAID, postgresql_where=FEE_PAID)


def downgrade() -> None:
    op.drop_index('ix_events_fee_paid', table_name='events')
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_column('event_mark')
