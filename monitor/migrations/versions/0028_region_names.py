"""regions: the names of administrative division codes (issue 21 item 1/2)

A reference table (docs/scale.md, "Every table, classified"): ``code`` (GB/T 2260, six
digits), ``name`` (西湖区) and ``parent`` (the code one level up, ``NULL`` for a province).
Filled by ``permit-monitor regions load FILE`` (CSV ``code,name``); read wherever a region
is printed to people, so a table shows ``330106 西湖区`` instead of a bare code. Empty at
first: an unknown code is shown bare.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'regions',
        sa.Column('code', sa.String(6), primary_key=True),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('parent', sa.String(6), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('regions')
