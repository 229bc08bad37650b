"""region: the county's administrative division code (GB/T 2260) on every per-county record

Issue 21 item 1, following docs/scale.md: ``region`` (``String(6)``, NOT NULL) on the
catalog (departments, users, items), on what ingestion writes (ingest_runs, events,
receipts, quarantine, ratings, complaints, activity), on alerts and what hangs on an alert
(dispositions, supervision_orders, holds, alert_changes, alert_notices: each with its
alert's region), and on the supervised per-case tables (exemptions, spot_checks). The
trail is not touched here: one chain per region is its own migration.

**Which region the existing rows get.** ``open_store(url, region=…)`` hands the
deployment's ``region`` setting to Alembic as it hands it the connection
(``monitor/db.py``), and this migration reads it from the Alembic config's attributes.
A store upgraded by a caller that hands none (or whose config leaves ``region`` unset)
gets ``000000``, docs/scale.md's "not yet named", and ``meta.region`` says so; the first
start with ``region`` set renames ``000000`` to it, once (``monitor/regionstore.py``).

The column is added with that code as its default, so the existing rows take it without
being rewritten: SQLite keeps a column default in the schema, PostgreSQL 11+ stores a
constant default once (a "fast default"). A county store of millions of events upgrades
in milliseconds on either. Writers stamp ``region`` explicitly; the default only catches
a row written by hand in SQL, which then belongs to the store's own county.

Indexes where the rollups filter (``report --region``, a city's board): alerts by
(region, department, status) and (region, raised_at); events by (region, department)
for the per-department case counts. The detectors' event indexes are unchanged: every
detector still reads one store's events as before, so their plans do not move.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

UNNAMED = '000000'
TABLES = ('departments', 'users', 'items', 'ingest_runs', 'events', 'receipts', 'quarantine',
          'alerts', 'dispositions', 'supervision_orders', 'holds', 'alert_changes',
          'alert_notices', 'exemptions', 'activity', 'spot_checks', 'ratings', 'complaints')
INDEXES = {'ix_alerts_region_board': ('alerts', ('region', 'department', 'status')),
           'ix_alerts_region_raised': ('alerts', ('region', 'raised_at')),
           'ix_events_region_department': ('events', ('region', 'department')),
           'ix_users_region': ('users', ('region', 'department'))}


def _handed_region() -> str:
    """The deployment's region as open_store handed it, checked here too (a migration
    must not write a code that is none into every row)."""
    config = op.get_context().config
    region = (config.attributes.get('region') if config is not None else None) or UNNAMED
    if region != UNNAMED and not (len(region) == 6 and region.isascii() and region.isdigit()):
        raise ValueError(f"region {region!r} is not a six-digit code")
    return region


def upgrade() -> None:
    region = _handed_region()
    for table in TABLES:
        op.add_column(table, sa.Column('region', sa.String(6), nullable=False,
                                       server_default=region))
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, list(columns))
    op.execute(sa.text("INSERT INTO meta (key, value) VALUES ('region', :region)")
               .bindparams(region=region))


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'region'")
    for name, (table, _columns) in INDEXES.items():
        op.drop_index(name, table_name=table)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('region')
