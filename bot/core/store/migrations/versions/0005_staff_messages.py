"""staff in the web chat: takeovers, and the lines staff put into a patient's chat

- ``chat_takeovers``: who holds a web-chat conversation while the assistant is paused,
  from when to when; at most one open takeover per conversation (partial unique index).
- ``staff_chat_lines``: each line staff put into the chat (joined notice, message,
  handed-back notice), stored before Rasa is asked to send it, with when it entered the
  conversation (``logged_at``), reached the patient's open chat (``delivered_at``) or
  could not be sent (``failed_at``). Undelivered lines go out when the patient's
  browser comes back within the session.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

ACTIVE = sa.text("ended_at IS NULL")
KIND = sa.Enum('joined', 'message', 'left', name='chat_line_kind', native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        'chat_takeovers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('escalation_id', sa.String(length=36), nullable=False),
        sa.Column('sender_id', sa.String(length=128), nullable=False),
        sa.Column('staff_user_id', sa.Integer(), nullable=True),
        sa.Column('staff_username', sa.String(length=64), nullable=False),
        sa.Column('staff_name', sa.String(length=100), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ['escalation_id'], ['escalations.id'], name='fk_chat_takeovers_escalation_id_escalations',
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['staff_user_id'], ['staff_users.id'], name='fk_chat_takeovers_staff_user_id_staff_users',
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name='pk_chat_takeovers'),
    )
    op.create_index('ix_chat_takeovers_escalation_id', 'chat_takeovers', ['escalation_id'])
    op.create_index(
        'uq_chat_takeovers_active_sender', 'chat_takeovers', ['sender_id'], unique=True,
        sqlite_where=ACTIVE, postgresql_where=ACTIVE,
    )
    op.create_table(
        'staff_chat_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('escalation_id', sa.String(length=36), nullable=False),
        sa.Column('takeover_id', sa.Integer(), nullable=True),
        sa.Column('sender_id', sa.String(length=128), nullable=False),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('author_username', sa.String(length=64), nullable=False),
        sa.Column('author_name', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('logged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['escalation_id'], ['escalations.id'], name='fk_staff_chat_lines_escalation_id_escalations',
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['takeover_id'], ['chat_takeovers.id'], name='fk_staff_chat_lines_takeover_id_chat_takeovers',
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name='pk_staff_chat_lines'),
    )
    op.create_index('ix_staff_chat_lines_escalation_id', 'staff_chat_lines', ['escalation_id'])
    op.create_index('ix_staff_chat_lines_pending', 'staff_chat_lines', ['sender_id', 'delivered_at'])


def downgrade() -> None:
    op.drop_index('ix_staff_chat_lines_pending', table_name='staff_chat_lines')
    op.drop_index('ix_staff_chat_lines_escalation_id', table_name='staff_chat_lines')
    op.drop_table('staff_chat_lines')
    op.drop_index('uq_chat_takeovers_active_sender', table_name='chat_takeovers')
    op.drop_index('ix_chat_takeovers_escalation_id', table_name='chat_takeovers')
    op.drop_table('chat_takeovers')
