"""case work: who holds an escalation, how it ended, when it was resolved; indexes for the queue

- ``escalations`` gains ``assignee_id`` (the staff account holding the case; the older
  free-text ``assignee`` column stays and carries the holder's username, so readers of
  it keep working), ``outcome`` (called back, booked, advised against dry needling,
  referred to a GP or emergency care, no answer), ``outcome_at``, ``attempts`` (contact
  attempts, e.g. "no answer after 3 attempts") and ``resolved_at``.
- Indexes for the queue's filters and order: priority, reason, channel, created_at,
  assignee_id, and (status, priority, created_at) for "open urgent first, then newest".

Outcomes are a non-native enum (a string column) like every other enum of the store,
so adding a value later is a code change only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN_EPISODE = sa.text("status <> 'resolved'")
OUTCOMES = ('called_back', 'booked', 'advised_against_dry_needling', 'referred_gp', 'referred_emergency', 'no_answer')
INDEXES = (
    ('ix_escalations_priority', ['priority']),
    ('ix_escalations_reason', ['reason']),
    ('ix_escalations_channel', ['channel']),
    ('ix_escalations_created_at', ['created_at']),
    ('ix_escalations_assignee_id', ['assignee_id']),
    ('ix_escalations_queue', ['status', 'priority', 'created_at']),
)


def upgrade() -> None:
    # SQLite's batch mode copies the table, and SQLAlchemy 1.4 reflects a partial index without
    # its WHERE clause: the index of open episodes is dropped first and created again after.
    op.drop_index('uq_escalations_open_sender_reason', table_name='escalations')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column(
            'outcome', sa.Enum(*OUTCOMES, name='escalation_outcome', native_enum=False, length=32), nullable=True
        ))
        batch_op.add_column(sa.Column('outcome_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            'fk_escalations_assignee_id_staff_users', 'staff_users', ['assignee_id'], ['id'], ondelete='SET NULL'
        )
    _open_episodes_index()
    for name, columns in INDEXES:
        op.create_index(name, 'escalations', columns, unique=False)
    # Cases resolved before this revision: their last update is the best estimate of when.
    op.execute("UPDATE escalations SET resolved_at = updated_at WHERE status = 'resolved'")


def _open_episodes_index() -> None:
    op.create_index(
        'uq_escalations_open_sender_reason', 'escalations', ['sender_id', 'reason'], unique=True,
        sqlite_where=OPEN_EPISODE, postgresql_where=OPEN_EPISODE,
    )


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name='escalations')
    op.drop_index('uq_escalations_open_sender_reason', table_name='escalations')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_constraint('fk_escalations_assignee_id_staff_users', type_='foreignkey')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('outcome_at')
        batch_op.drop_column('outcome')
        batch_op.drop_column('assignee_id')
    _open_episodes_index()
