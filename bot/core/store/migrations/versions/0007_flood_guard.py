"""flood guard: urgent escalations per client address are capped, the excess grouped

- ``escalations.client_key``: the keyed hash (HMAC with SESSION_SECRET) of the client
  address a message came from, never the address itself; indexed, to count an address's
  urgent escalations of the last hour.
- ``escalations.possible_abuse``: the one grouped case per address that holds the urgent
  messages past the cap (bot/core/escalation/flood.py).
- ``escalation_sources``: one row per client address that raised an urgent escalation
  without contact details; the upsert on it serialises the count across processes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_key', sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column('possible_abuse', sa.Boolean(), nullable=False, server_default=sa.text('false'))
        )
        batch_op.create_index('ix_escalations_client_key', ['client_key'], unique=False)
    op.create_table(
        'escalation_sources',
        sa.Column('client_key', sa.String(length=64), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('client_key', name='pk_escalation_sources'),
    )


def downgrade() -> None:
    op.drop_table('escalation_sources')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index('ix_escalations_client_key')
        batch_op.drop_column('possible_abuse')
        batch_op.drop_column('client_key')
