"""the workflow gate's log; holds the workflow system acknowledges

- ``gate_log``: every answer of the workflow gate (``POST /api/v1/gate``, ``permit-monitor
  gate check``): who asked, the candidate event, the decision and its reasons, the
  versions of the rules consulted, whether the answer was a degraded one. Indexed by the
  candidate's ``event_id`` (an event the gate refused and that is ingested anyway is
  cited by the alert it raises) and by the moment.
- ``holds.sent_at``, ``holds.acked_at``, ``holds.acked_by``, ``holds.ack_note``,
  ``holds.sends``: a hold goes to the workflow system until it acknowledges it; until then
  it is pending.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'gate_log',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('asked_by', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('case_id', sa.String(length=128), nullable=True),
        sa.Column('event_id', sa.String(length=128), nullable=True),
        sa.Column('step', sa.String(length=64), nullable=True),
        sa.Column('candidate', sa.JSON(), nullable=False),
        sa.Column('decision', sa.String(length=8), nullable=False),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('rule_versions', sa.JSON(), nullable=False),
        sa.Column('degraded', sa.Boolean(), nullable=False),
        sa.Column('elapsed_ms', sa.Integer(), nullable=True),
    )
    op.create_index('ix_gate_log_event_id', 'gate_log', ['event_id'])
    op.create_index('ix_gate_log_case_id', 'gate_log', ['case_id'])
    op.create_index('ix_gate_log_at', 'gate_log', ['at'])
    with op.batch_alter_table('holds') as batch:
        batch.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('sends', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('acked_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('ack_note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('holds') as batch:
        for column in ('ack_note', 'acked_by', 'acked_at', 'sends', 'sent_at'):
            batch.drop_column(column)
    op.drop_index('ix_gate_log_at', 'gate_log')
    op.drop_index('ix_gate_log_case_id', 'gate_log')
    op.drop_index('ix_gate_log_event_id', 'gate_log')
    op.drop_table('gate_log')
