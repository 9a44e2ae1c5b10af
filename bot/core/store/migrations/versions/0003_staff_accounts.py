"""staff accounts: roles, lockout, server-side dashboard sessions, API tokens

- ``staff_users`` gains ``display_name``, ``role`` ('staff' | 'admin'), ``password_changed_at``,
  ``must_change_password``, ``disabled_at`` (replaces ``is_active``: an inactive account
  becomes disabled now), ``failed_logins`` and ``locked_until``.
- ``staff_sessions``: one row per signed-in browser; the cookie holds a random key and
  the row only its SHA-256, with the CSRF token, activity times and when it ended.
- ``api_tokens``: named bearer tokens, stored as SHA-256, revocable.
- ``staff_login_failures``: failed sign-ins per client address (a keyed hash), so the
  throttle holds across web replicas.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

ROLE = sa.Enum('staff', 'admin', name='staff_role', native_enum=False, length=32)


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=100), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('role', ROLE, nullable=False, server_default='staff'))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
    users = sa.table(
        'staff_users', sa.column('is_active', sa.Boolean), sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('disabled_at', sa.DateTime(timezone=True)), sa.column('password_changed_at', sa.DateTime(timezone=True)),
    )
    op.execute(sa.update(users).where(users.c.is_active == sa.false()).values(disabled_at=sa.func.current_timestamp()))
    op.execute(sa.update(users).values(password_changed_at=users.c.created_at))
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.alter_column('password_changed_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_column('is_active')

    op.create_table('staff_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idle_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_staff_sessions_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_staff_sessions_key_hash'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_sessions_idle_until'), ['idle_until'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.id'], name=op.f('fk_api_tokens_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('staff_login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('address_key', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_failures'))
    )
    with op.batch_alter_table('staff_login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_login_failures_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_login_failures_address_key'), ['address_key'], unique=False)


def downgrade() -> None:
    op.drop_table('staff_login_failures')
    op.drop_table('api_tokens')
    op.drop_table('staff_sessions')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_active', sa.Boolean(), nullable=False, server_default=sa.true()))
    users = sa.table('staff_users', sa.column('is_active', sa.Boolean), sa.column('disabled_at', sa.DateTime(timezone=True)))
    op.execute(sa.update(users).where(users.c.disabled_at.isnot(None)).values(is_active=sa.false()))
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        for column in ('locked_until', 'failed_logins', 'disabled_at', 'must_change_password',
                       'password_changed_at', 'role', 'display_name'):
            batch_op.drop_column(column)
