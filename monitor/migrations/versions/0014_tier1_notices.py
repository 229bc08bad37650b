"""tier-1 notices: who was told of which alert at which level, and how each user wants it

* ``alert_notices``: one row per (alert, level, recipient) — the natural key that makes
  telling tier 1 idempotent (a re-run, a catch-up slot, a re-raised level never queues the
  same message twice). ``mode`` says how it went: ``immediate`` (queued at once),
  ``held`` (queued, due at the end of quiet hours), ``digest`` (waiting for the user's
  daily digest; ``outbox_id`` and ``digested_at`` set when the digest is queued).
* ``users.delivery``: ``immediate`` (the default when empty) or ``digest`` — a person's
  choice of one message per alert or one daily digest; the catalog never sets it, so
  reloading the catalog keeps it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

# 64-bit ids on PostgreSQL, as migration 0012 made every growing id
BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alert_notices',
        sa.Column('alert_id', BIG, sa.ForeignKey('alerts.id'), primary_key=True),
        sa.Column('level', sa.String(length=16), primary_key=True),
        sa.Column('recipient', sa.String(length=64), primary_key=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('outbox_id', BIG, nullable=True),
        sa.Column('digested_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_alert_notices_digest', 'alert_notices', ['mode', 'digested_at'])
    op.create_index('ix_alert_notices_at', 'alert_notices', ['at'])
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('delivery')
    op.drop_index('ix_alert_notices_at', table_name='alert_notices')
    op.drop_index('ix_alert_notices_digest', table_name='alert_notices')
    op.drop_table('alert_notices')
