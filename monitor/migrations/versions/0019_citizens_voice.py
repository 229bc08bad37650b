"""ratings (好差评) and complaints (效能投诉): the citizens' voice in the two-tier loop

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ratings',
        sa.Column('rating_id', sa.String(128), primary_key=True),
        sa.Column('case_id', sa.String(128), nullable=True),
        sa.Column('item_code', sa.String(64), nullable=True),
        sa.Column('department', sa.String(64), nullable=False),
        sa.Column('rated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(32), nullable=True),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('run_id', sa.Integer(), sa.ForeignKey('ingest_runs.id'), nullable=True),
        sa.Column('source_line', sa.Integer(), nullable=True),
        sa.Column('appeal', sa.String(16), nullable=True),
        sa.Column('appeal_reason', sa.Text(), nullable=True),
        sa.Column('appealed_by', sa.String(64), nullable=True),
        sa.Column('appealed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(64), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_ratings_case_id', 'ratings', ['case_id'])
    op.create_index('ix_ratings_rated_at', 'ratings', ['rated_at'])
    op.create_index('ix_ratings_department_rated', 'ratings', ['department', 'rated_at'])
    op.create_table(
        'complaints',
        sa.Column('complaint_id', sa.String(128), primary_key=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(32), nullable=True),
        sa.Column('department', sa.String(64), nullable=False),
        sa.Column('case_id', sa.String(128), nullable=True),
        sa.Column('category', sa.String(64), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('run_id', sa.Integer(), sa.ForeignKey('ingest_runs.id'), nullable=True),
        sa.Column('source_line', sa.Integer(), nullable=True),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('investigated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_complaints_received_at', 'complaints', ['received_at'])
    op.create_index('ix_complaints_case_id', 'complaints', ['case_id'])


def downgrade() -> None:
    op.drop_table('complaints')
    op.drop_table('ratings')
