"""the catalog keyed per region: departments (region, code), items (region, code), users (region, id)

Issue 21 item 1, docs/scale.md ("Every table, classified"): every county of a province uses
the same provincial item codes (事项编码) and much the same department codes, so a store
that holds several counties must let each county have its own ``items`` and
``departments`` rows under the same code, with its own limits. Their primary keys become
``(region, code)``; ``users`` becomes ``(region, id)`` as the distribution column asks,
while ``catalog load`` still refuses an id that another county already holds (a login id
names one person store-wide: accounts, sessions, tokens, grants and every trail entry's
actor name a user by id alone; monitor/catalog.py).

Nothing hangs on these tables by a foreign key, and no row changes: a single-county store
upgrades without any change of meaning (its rows all carry its one region).

**Fast on a big store.** The catalog is small (thousands of rows, not millions), and only
its keys change:

* PostgreSQL drops the old primary key and adds the new one in place (one index build per
  table); the 0025 catalog-version triggers stay as they are.
* SQLite cannot change a primary key in place: the three tables are copied (Alembic's batch
  mode: new table, copy, drop, rename, indexes again), and the catalog-version triggers,
  which go with the dropped table, are made again exactly as 0025 made them.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""
import warnings

from alembic import op


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

# table → its key column besides the region
TABLES = {'departments': 'code', 'items': 'code', 'users': 'id'}
# 0025's triggers on SQLite: table → the changes that move meta.catalog_version
WATCHED = {'items': ('INSERT', 'DELETE', 'UPDATE'),
           'departments': ('INSERT', 'DELETE', 'UPDATE'),
           'users': ('INSERT', 'DELETE', 'UPDATE OF id, roles, department')}
BUMP = ("UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
        "WHERE key = 'catalog_version'")


def _sqlite_triggers(table: str) -> None:
    for event in WATCHED[table]:
        op.execute(f"DROP TRIGGER IF EXISTS catalog_version_{table}_{event.split()[0].lower()}")
        op.execute(f"CREATE TRIGGER catalog_version_{table}_{event.split()[0].lower()} "
                   f"AFTER {event} ON {table} BEGIN {BUMP}; END")


def _rekey(table: str, columns: list[str], old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {old}, "
                   f"ADD CONSTRAINT {new} PRIMARY KEY ({', '.join(columns)})")
        return
    # the copy's key replaces the reflected one, as intended: SQLAlchemy warns that the
    # reflected column was flagged as the key
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*specifies columns .* as primary_key')
        with op.batch_alter_table(table, recreate='always') as batch:
            batch.create_primary_key(new, columns)
    _sqlite_triggers(table)


def upgrade() -> None:
    for table, key in TABLES.items():
        _rekey(table, ['region', key], f'{table}_pkey', f'pk_{table}')


def downgrade() -> None:
    conn = op.get_bind()
    for table, key in TABLES.items():
        if conn.exec_driver_sql(f"SELECT {key} FROM {table} GROUP BY {key} "
                                "HAVING COUNT(*) > 1 LIMIT 1").first():
            raise RuntimeError(f'{table}: two regions share a code; it cannot be keyed by '
                               'code alone again')
    for table, key in TABLES.items():
        _rekey(table, [key], f'pk_{table}', f'{table}_pkey')
