"""alerts unique per (dedupe_key, region), receipts keyed (region, department, period)

Issue 21 item 1, docs/scale.md ("Every table, classified"): since 0029 two counties of
one store may share a department code, each with its own catalog. The findings about a
department rather than a case (``volume_drop``, ``fee_reconciliation``, ``ranking_last``:
subject ``DEPT|YYYY-MM``) then have the same rule and subject in both counties, and the
treasury's figures for a department-month are two rows, one per county. So the alert's
dedupe key is unique per region, and a receipts row is keyed by its region too — both
the keys the distribution column asks for (a unique key of a distributed table includes
the region). The alerts' key leads its unique index, so looking alerts up by key alone
(storing findings, ``rules explain``, the join of ``overdue``) stays a range of that
index, as it was; no other index is needed.

No row changes: a single-county store upgrades without any change of meaning (its rows
all carry its one region), and no trail entry is touched.

* PostgreSQL swaps each constraint in place (one index build per table).
* SQLite cannot drop a table's inline ``UNIQUE (dedupe_key)``: ``alerts`` is made again
  from its own ``CREATE TABLE`` text with the new constraint and its indexes as they were.
  Five tables point at ``alerts.id`` and foreign keys are enforced, so the table is not
  renamed into place (a rename would carry the references along): its rows are copied
  aside, the table dropped and created again under its own name, and the rows copied
  back, the foreign keys checked at commit (``defer_foreign_keys``, in a transaction begun
  here if none is open yet), when every alert is back under its id. ``receipts``, which
  nothing points at, is copied as 0029 copied the catalog (Alembic's batch mode).

Measured (a 2-core machine under other load): 100,000 alerts with 10,000 level changes
upgrade in 0.32 s on PostgreSQL and 35 s on SQLite, where each alert's foreign keys are
checked as it leaves and returns (8.8 s the drop, 6.0 s the copy back, 9.4 s its eight
indexes again).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07
"""
import warnings

from alembic import op


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

OLD_UNIQUE = 'UNIQUE (dedupe_key)'
NEW_UNIQUE = 'CONSTRAINT uq_alerts_dedupe_key_region UNIQUE (dedupe_key, region)'


def _sqlite_alerts(old: str, new: str) -> None:
    """Make ``alerts`` again with unique ``new`` in place of ``old`` (see the module)."""
    conn = op.get_bind()
    table = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'alerts'").scalar_one()
    if old not in table:
        raise RuntimeError(f'alerts: {old} not found in its definition')
    indexes = [sql for (sql,) in conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts' "
        "AND sql IS NOT NULL ORDER BY name")]
    # the foreign keys are checked at commit, when every id is back: in a transaction,
    # which Python's sqlite3 opens only before a row is written, not before DDL
    if not conn.connection.dbapi_connection.in_transaction:
        op.execute('BEGIN')
    op.execute('PRAGMA defer_foreign_keys = ON')
    op.execute('CREATE TABLE _alerts_0033 AS SELECT * FROM alerts')
    op.execute('DROP TABLE alerts')
    op.execute(table.replace(old, new))
    op.execute('INSERT INTO alerts SELECT * FROM _alerts_0033')
    op.execute('DROP TABLE _alerts_0033')
    for sql in indexes:
        op.execute(sql)


def _receipts(columns: list[str], old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"ALTER TABLE receipts DROP CONSTRAINT {old}, "
                   f"ADD CONSTRAINT {new} PRIMARY KEY ({', '.join(columns)})")
        return
    with warnings.catch_warnings():  # the copy's key replaces the reflected one, as meant
        warnings.filterwarnings('ignore', message='.*specifies columns .* as primary_key')
        with op.batch_alter_table('receipts', recreate='always') as batch:
            batch.create_primary_key(new, columns)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE alerts DROP CONSTRAINT alerts_dedupe_key_key, '
                   'ADD CONSTRAINT uq_alerts_dedupe_key_region UNIQUE (dedupe_key, region)')
    else:
        _sqlite_alerts(OLD_UNIQUE, NEW_UNIQUE)
    _receipts(['region', 'department', 'period'], 'receipts_pkey', 'pk_receipts')


def downgrade() -> None:
    conn = op.get_bind()
    for table, key in (('alerts', 'dedupe_key'), ('receipts', 'department, period')):
        if conn.exec_driver_sql(f"SELECT 1 FROM {table} GROUP BY {key} "
                                "HAVING COUNT(*) > 1 LIMIT 1").first():
            raise RuntimeError(f'{table}: two regions share a key ({key}); it cannot be '
                               'keyed without the region again')
    if conn.dialect.name == 'postgresql':
        op.execute('ALTER TABLE alerts DROP CONSTRAINT uq_alerts_dedupe_key_region, '
                   'ADD CONSTRAINT alerts_dedupe_key_key UNIQUE (dedupe_key)')
    else:
        _sqlite_alerts(NEW_UNIQUE, OLD_UNIQUE)
    _receipts(['department', 'period'], 'pk_receipts', 'receipts_pkey')
