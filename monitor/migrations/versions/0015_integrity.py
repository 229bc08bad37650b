"""integrity of the record: the trail's hash function

* ``trail_head.algorithm``: the hash function the chain is computed with, ``sha256`` (every
  existing chain) or ``sm3`` (国密, GB/T 32905-2016), chosen by the ``audit.hash`` setting
  while the trail is still empty (monitor/trail.py ``adopt``) and never changed after.

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trail_head') as batch:
        batch.add_column(sa.Column('algorithm', sa.String(length=8), nullable=False,
                                   server_default='sha256'))


def downgrade() -> None:
    with op.batch_alter_table('trail_head') as batch:
        batch.drop_column('algorithm')
