"""integrity of the record: the trail's hash function

* ``trail_head.algorithm``: the hash function the chain is computed with, ``sha256`` (every
  existing chain) or ``sm3`` (国密, GB/T 32905-2016), chosen by the ``audit.hash`` setting
  while the trail is still empty (monitor/trail.py ``adopt``) and never changed after.
* ``trail_head.state_since``: the entry after which the trail accounts for every row of the
  supervised tables (monitor/supervised.py). A store with no such rows yet starts there at
  once; one that has some stays NULL until the program appends a baseline (a snapshot of
  those rows) on its next start, since a migration should not compute the chain's hashes.
* ``ix_trail_action``: the last ``rules_in_force`` entry (monitor/ruleset.py) found at once.
* ``grants``: a tier-2 role or a monitor's move asked for by a catalog load, pending until
  an existing tier-2 monitor approves or rejects it (monitor/grants.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


SUPERVISED = ('alerts', 'holds', 'supervision_orders', 'dispositions', 'exemptions', 'users',
              'spot_checks')


def upgrade() -> None:
    with op.batch_alter_table('trail_head') as batch:
        batch.add_column(sa.Column('algorithm', sa.String(length=8), nullable=False,
                                   server_default='sha256'))
        batch.add_column(sa.Column('state_since', sa.BigInteger(), nullable=True))
    op.create_table(
        'grants',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=True),
        sa.Column('was', sa.JSON(), nullable=False),
        sa.Column('source', sa.String(length=1000), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('requested_by', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
    )
    op.create_index('ix_grants_user_id', 'grants', ['user_id'])
    # the newest entry of one action (rules_in_force, baseline) without a scan of the trail
    op.create_index('ix_trail_action', 'trail', ['action'])
    op.create_index('ix_grants_status', 'grants', ['status'])
    conn = op.get_bind()
    if not any(conn.execute(sa.text(f'SELECT 1 FROM {t} LIMIT 1')).first()
               for t in SUPERVISED):
        conn.execute(sa.text('UPDATE trail_head SET state_since = seq'))


def downgrade() -> None:
    op.drop_index('ix_trail_action', 'trail')
    op.drop_table('grants')
    with op.batch_alter_table('trail_head') as batch:
        batch.drop_column('state_since')
        batch.drop_column('algorithm')
