"""meta.catalog_version: a counter the store raises whenever the catalog changes

The workflow gate keeps what it reads of the catalog whole (items' minimum minutes and
four-eyes policies, users' roles, the candidate's item and department) from one decision
to the next, for as long as this counter has not moved (monitor/catalogmemo.py). Triggers
raise it on any change to ``items`` or ``departments`` and on any change to ``users``
that adds, removes or renames a user or changes their roles or department, whoever
writes — ``catalog load`` in another process, a grant approved, an SQL session — so no
writer has to remember to. A user's own choice of delivery (monitor/tier1.py) does not
move it.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""
import secrets

from alembic import op


revision = '0025'
down_revision = '0024'  # main's 0024 (data_quality incremental) at merge; 0023 when written
branch_labels = None
depends_on = None

KEY = 'catalog_version'
# table → the changes that move the counter (SQLite: one trigger per event)
WATCHED = {'items': ('INSERT', 'DELETE', 'UPDATE'),
           'departments': ('INSERT', 'DELETE', 'UPDATE'),
           'users': ('INSERT', 'DELETE', 'UPDATE OF id, roles, department')}
BUMP = f"UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = '{KEY}'"


def _name(table: str, event: str) -> str:
    return f"catalog_version_{table}_{event.split()[0].lower()}"


def upgrade() -> None:
    # a random start: a store made again under the same URL, counting afresh, is not
    # mistaken for the one a memo was made of
    op.execute(f"INSERT INTO meta (key, value) VALUES ('{KEY}', '{secrets.randbits(48)}')")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $$ BEGIN {BUMP}; RETURN NULL; END $$")
        for table, events in WATCHED.items():
            op.execute(f"CREATE TRIGGER catalog_version_{table} AFTER TRUNCATE OR "
                       f"{' OR '.join(events)} ON {table} FOR EACH STATEMENT "
                       "EXECUTE FUNCTION catalog_version_bump()")
        return
    for table, events in WATCHED.items():
        for event in events:
            op.execute(f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} "
                       f"BEGIN {BUMP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in WATCHED:
            op.execute(f"DROP TRIGGER catalog_version_{table} ON {table}")
        op.execute("DROP FUNCTION catalog_version_bump()")
    else:
        for table, events in WATCHED.items():
            for event in events:
                op.execute(f"DROP TRIGGER {_name(table, event)}")
    op.execute(f"DELETE FROM meta WHERE key = '{KEY}'")
