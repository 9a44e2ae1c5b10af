"""episodes and outbox claims: one open escalation per conversation and reason, urgent first

- ``escalations``: the unique (sender_id, reason) constraint becomes a partial unique
  index over open episodes (status <> 'resolved'), so a question after staff resolved
  the first one is a new escalation instead of overwriting it; ``occurrences`` counts
  repeated triggers of one episode.
- ``notification_outbox``: ``priority_rank`` (0 urgent, 1 high, 2 normal; filled from
  the payload for rows already queued) and ``claim_token`` for the notifier's leases.

SQLite needs batch mode (the table is copied) to drop a constraint; PostgreSQL alters in place.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:12:00
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OPEN_EPISODE = sa.text("status <> 'resolved'")
RANK = {"urgent": 0, "high": 1, "normal": 2}


def upgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_escalations_sender_reason', type_='unique')
        batch_op.add_column(sa.Column('occurrences', sa.Integer(), nullable=False, server_default='1'))
    op.create_index(
        'uq_escalations_open_sender_reason', 'escalations', ['sender_id', 'reason'], unique=True,
        sqlite_where=OPEN_EPISODE, postgresql_where=OPEN_EPISODE,
    )

    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority_rank', sa.Integer(), nullable=False, server_default='2'))
        batch_op.add_column(sa.Column('claim_token', sa.String(length=36), nullable=True))
    _rank_queued_notifications()


def _rank_queued_notifications() -> None:
    """Give rows queued before this revision the rank their payload's priority implies."""
    bind = op.get_bind()
    outbox = sa.table('notification_outbox', sa.column('id', sa.Integer), sa.column('payload', sa.JSON),
                      sa.column('priority_rank', sa.Integer))
    for row_id, payload in bind.execute(sa.select(outbox.c.id, outbox.c.payload)).all():
        if isinstance(payload, str):
            payload = json.loads(payload)
        rank = RANK.get((payload or {}).get("priority"), RANK["normal"])
        if rank != RANK["normal"]:
            bind.execute(sa.update(outbox).where(outbox.c.id == row_id).values(priority_rank=rank))


def downgrade() -> None:
    """Back to one row per conversation and reason; fails if a conversation has several episodes."""
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.drop_column('claim_token')
        batch_op.drop_column('priority_rank')
    op.drop_index('uq_escalations_open_sender_reason', table_name='escalations')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_column('occurrences')
        batch_op.create_unique_constraint('uq_escalations_sender_reason', ['sender_id', 'reason'])
