"""alerts.title: a finding's own title

A fee finding on a fine (a penalty item) is titled 罚没款未经网上缴纳 rather than the rule's
网下收费 (a kind's ``VARIANTS``, chosen per finding): the alert keeps the title it was
raised with. NULL on alerts raised before: readers fall back to the rule's title, and the
next run that finds them again fills it in.

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0019'  # main's newest at merge (i17-integrity); 0017 when written
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alerts', sa.Column('title', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('title')
