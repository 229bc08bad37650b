"""exemptions registry; alerts.exemption_id for findings suppressed by one

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'exemptions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('rule_id', sa.String(length=128), nullable=False),
        sa.Column('scope', sa.JSON(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('approved_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('until', sa.Date(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_by', sa.String(length=64), nullable=True),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
    )
    op.create_index('ix_exemptions_rule_id', 'exemptions', ['rule_id'])
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exemption_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('exemption_id')
    op.drop_index('ix_exemptions_rule_id', table_name='exemptions')
    op.drop_table('exemptions')
