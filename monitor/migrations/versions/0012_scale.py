"""province scale: 64-bit ids of the growing tables, and the ``dated`` index of events

* 64-bit ids: a province-wide store (~860 M events a year) would overflow 32-bit
  ``events.id`` in about two and a half years. On PostgreSQL the ids of the tables that
  grow with the store (events, alerts and what hangs off them, the trail, the outbox,
  quarantine, the monitoring log) and every column holding one become ``bigint``, with
  their sequences. This rewrites those tables (minutes for tens of millions of rows).
  On SQLite nothing changes: an ``INTEGER`` there is already 64-bit (and a ``BIGINT``
  primary key would no longer be the rowid), so there is nothing to rebuild.
* ``ix_events_dated``: the later of an event's two timestamps, indexed, so the events
  that came into view since a run's as-of are a range of it instead of a table scan
  (see ``monitor.models.dated``; the expression here must stay the same).
* ``ix_events_case_time`` gains ``id`` as its last column: a case's events in
  ``(occurred_at, id)`` order come straight from the index, with no sort and (PostgreSQL)
  no visit to the table — step_too_fast's pass over every event took 1.25 s instead of
  2.1 s at 100,000 cases.
* ``open_cases``: the cases the ``overdue`` rule saw open as of its last run, which it
  looks at again when the date moves (instead of scanning the history for them). Rules'
  watermarks are reset, so each rule's next run is a full one that fills it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# table → columns holding a growing id (the first: its own primary key, if it has one)
BIG = {
    'events': ['id'],
    'alerts': ['id'],
    'alert_changes': ['id', 'alert_id'],
    'dispositions': ['id', 'alert_id'],
    'supervision_orders': ['id', 'alert_id'],
    'holds': ['id', 'alert_id'],
    'outbox': ['id', 'alert_id'],
    'trail': ['seq', 'alert_id'],
    'trail_head': ['seq'],
    'quarantine': ['id'],
    'activity': ['id'],
    'rule_state': ['last_event_id'],
    'receipts': ['event_mark'],
}
SERIAL = ['events', 'alerts', 'alert_changes', 'dispositions', 'supervision_orders', 'holds',
          'outbox', 'quarantine', 'activity']
DATED = {'sqlite': 'max(occurred_at, coalesce(recorded_at, occurred_at))',
         'postgresql': 'GREATEST(occurred_at, recorded_at)'}


def _set_type(type_: str) -> None:
    for table, columns in BIG.items():
        op.execute(f'ALTER TABLE {table} ' + ', '.join(
            f'ALTER COLUMN {column} TYPE {type_}' for column in columns))
    for table in SERIAL:
        op.execute(f"ALTER SEQUENCE {_sequence(table)} AS {type_}")


def _sequence(table: str) -> str:
    return op.get_bind().scalar(sa.text(f"SELECT pg_get_serial_sequence('{table}', 'id')"))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        _set_type('bigint')
    op.create_index('ix_events_dated', 'events', [sa.text(DATED[dialect])], unique=False)
    op.drop_index('ix_events_case_time', table_name='events')
    op.create_index('ix_events_case_time', 'events', ['case_id', 'occurred_at', 'id'])
    op.create_table('open_cases',
                    sa.Column('rule_id', sa.String(length=128), nullable=False),
                    sa.Column('case_id', sa.String(length=128), nullable=False),
                    sa.PrimaryKeyConstraint('rule_id', 'case_id'))
    op.execute("DELETE FROM rule_state")


def downgrade() -> None:
    op.drop_table('open_cases')
    op.drop_index('ix_events_case_time', table_name='events')
    op.create_index('ix_events_case_time', 'events', ['case_id', 'occurred_at'])
    op.drop_index('ix_events_dated', table_name='events')
    if op.get_bind().dialect.name == 'postgresql':
        _set_type('integer')
