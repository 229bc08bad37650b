"""leases.token: a fencing token, raised each time a lease changes hands

A runner that lost its lease (paused past its lifetime, its host asleep) must not go on
writing as if it still held it: every commit of an audit write checks that the lease
still has the runner's holder and token (monitor/lease.py), and stops the work if not.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.BigInteger(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_column('token')
