"""accounts, web sessions and API tokens; the trail's channel; indexes for the web pages

- ``accounts``: a catalog user's argon2id password hash, first-login change, lockout.
- ``web_sessions``: signed-in browsers (the SHA-256 of the cookie), CSRF token, last use.
- ``api_tokens``: bearer tokens (their SHA-256), personal or a service's with a scope.
- ``trail.channel``: web | api | cli for entries a person made from now on. Entries
  already stored keep NULL, and an entry's hash covers ``channel`` only when it is set
  (monitor/trail.py), so every existing chain verifies as before.
- covering indexes for the board, the queues and the 30-day trend, so those pages read
  only index entries, never the wide alert rows (their messages and evidence): by
  status (the county), by department (one department), by the moment raised.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

INDEXES = {
    'ix_alerts_status_board': ['status', 'tier', 'department', 'level', 'rule_id', 'due_on'],
    'ix_alerts_department_board': ['department', 'status', 'tier', 'level', 'rule_id',
                                   'due_on'],
    'ix_alerts_raised_at': ['raised_at', 'department', 'status'],
}


def upgrade() -> None:
    op.create_table(
        'accounts',
        sa.Column('user_id', sa.String(length=64), primary_key=True),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('must_change', sa.Boolean(), nullable=False),
        sa.Column('password_set_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        'web_sessions',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_web_sessions_user_id', 'web_sessions', ['user_id'])
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=True),
        sa.Column('service', sa.String(length=64), nullable=True),
        sa.Column('scope', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table('trail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), nullable=True))
    for name, columns in INDEXES.items():
        op.create_index(name, 'alerts', columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name='alerts')
    with op.batch_alter_table('trail', schema=None) as batch_op:
        batch_op.drop_column('channel')
    op.drop_table('api_tokens')
    op.drop_index('ix_web_sessions_user_id', table_name='web_sessions')
    op.drop_table('web_sessions')
    op.drop_table('accounts')
