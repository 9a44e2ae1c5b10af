"""audit log by conversation: contact forms left unfinished (issue 21)

The new audit kind ``contact_form_abandoned`` needs no schema change: ``audit_events.kind``
is a plain VARCHAR(32) (a non-native enum without a CHECK constraint), so the value is
stored as it is. What the new entry does need is a lookup by conversation: a contact form
left unanswered by a patient who asked for a person or had a health question has no
escalation yet, so its entry is kept against the conversation (``sender_id``), and the
session start (actions/session.py) asks whether it was already recorded before writing it
again. ``audit_events`` is append-only and grows forever; without this index that question
reads the whole table on every new session that left a form behind.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_audit_events_sender_id', 'audit_events', ['sender_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_events_sender_id', table_name='audit_events')
