"""one trail chain per region (issue 21 item 3; docs/scale.md, "One chain per region")

* ``trail`` gains ``region`` (the county's code, GB/T 2260) and is keyed ``(region, seq)``:
  ``seq`` counts 1, 2, 3 … within a region, and ``prev_hash`` is unique within a region.
* ``trail_head`` has one row per region (key ``region``) instead of the single row
  ``id = 1``, and two new columns: ``genesis``, the hash entry 1 of the chain chains to,
  and ``home``, the store's own chain (the deployment's region), where an entry that names
  no region goes.

The existing chain becomes the store's own, under the region ``open_store`` hands the
migration (config.yaml's, as for 0026), or ``000000`` (not yet named) when none is handed:
the program then renames it to the configured ``region`` on its first start with one
(monitor/trail.py ``adopt``). Its genesis is the one it was begun with (the
``prev_hash`` of entry 1, or the head's hash while it is empty): no hash is recomputed, so
every existing entry, head and anchor stays valid.

Both tables are copied into new ones rather than altered: their primary and unique keys
were created unnamed, and a copy changes them the same way on SQLite and PostgreSQL.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

UNNAMED = '000000'
COLUMNS = 'seq, at, alert_id, action, actor, detail, prev_hash, hash, channel'


def _trail(name: str, region: bool) -> None:
    """The trail table under ``name`` (renamed to ``trail`` after the copy), with its keys
    already named as they will stay (PostgreSQL keeps a constraint's name through a rename;
    without ``region``, the names PostgreSQL gave the original's)."""
    keys = (['region'] if region else []) + ['seq']
    pk, unique = (('pk_trail', 'uq_trail_region_prev_hash') if region
                  else ('trail_pkey', 'trail_prev_hash_key'))
    op.create_table(
        name,
        *([sa.Column('region', sa.String(length=6), nullable=False)] if region else []),
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('alert_id', sa.BigInteger(), nullable=True),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint(*keys, name=pk),
        sa.UniqueConstraint(*keys[:-1], 'prev_hash', name=unique),
    )


def _indexes() -> None:
    op.create_index('ix_trail_alert_id', 'trail', ['alert_id'])
    op.create_index('ix_trail_action', 'trail', ['action'])


def _handed_region() -> str:
    """The deployment's region as open_store handed it (0026 reads it the same way)."""
    config = op.get_context().config
    region = (config.attributes.get('region') if config is not None else None) or UNNAMED
    if not (len(region) == 6 and region.isascii() and region.isdigit()):
        raise ValueError(f"region {region!r} is not a six-digit code")
    return region


def upgrade() -> None:
    conn = op.get_bind()
    region = _handed_region()
    _trail('trail_by_region', region=True)
    conn.execute(sa.text(f"INSERT INTO trail_by_region (region, {COLUMNS}) "
                         f"SELECT :region, {COLUMNS} FROM trail"), {'region': region})
    op.drop_table('trail')
    op.rename_table('trail_by_region', 'trail')
    _indexes()

    op.create_table(
        'trail_heads',
        sa.Column('region', sa.String(length=6), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('algorithm', sa.String(length=8), nullable=False, server_default='sha256'),
        sa.Column('state_since', sa.BigInteger(), nullable=True),
        sa.Column('genesis', sa.String(length=64), nullable=False),
        sa.Column('home', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint('region', name='pk_trail_head'),
    )
    # the chain's own genesis: what entry 1 chains to, or (empty) where the head stands
    conn.execute(sa.text(
        "INSERT INTO trail_heads (region, seq, hash, algorithm, state_since, genesis, home) "
        "SELECT :region, h.seq, h.hash, h.algorithm, h.state_since, "
        "COALESCE((SELECT t.prev_hash FROM trail t WHERE t.seq = 1), h.hash), :home "
        "FROM trail_head h WHERE h.id = 1"), {'region': region, 'home': True})
    op.drop_table('trail_head')
    op.rename_table('trail_heads', 'trail_head')


def downgrade() -> None:
    conn = op.get_bind()
    if conn.scalar(sa.text('SELECT COUNT(*) FROM trail_head')) > 1:
        raise RuntimeError('the trail has a chain per region: it cannot go back to one chain')
    op.drop_index('ix_trail_action', 'trail')
    op.drop_index('ix_trail_alert_id', 'trail')
    _trail('trail_one', region=False)
    conn.execute(sa.text(f"INSERT INTO trail_one ({COLUMNS}) SELECT {COLUMNS} FROM trail"))
    op.drop_table('trail')
    op.rename_table('trail_one', 'trail')
    _indexes()
    op.create_table(
        'trail_one_head',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('algorithm', sa.String(length=8), nullable=False, server_default='sha256'),
        sa.Column('state_since', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='trail_head_pkey'),
    )
    conn.execute(sa.text('INSERT INTO trail_one_head (id, seq, hash, algorithm, state_since) '
                         'SELECT 1, seq, hash, algorithm, state_since FROM trail_head'))
    op.drop_table('trail_head')
    op.rename_table('trail_one_head', 'trail_head')
