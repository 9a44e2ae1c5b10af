"""sms and whatsapp: patient addresses, opt-outs, processed messages, outgoing texts, counters

- ``sms_contacts``: one row per patient address (``+44...`` or ``whatsapp:+44...``) with
  its random conversation id (the number is never a Rasa sender id), its opt-out, the
  time of its last message (WhatsApp's 24-hour window) and the numbered choices last
  offered.
- ``sms_inbound``: the Twilio ``MessageSid`` of every message taken in, unique, so a
  webhook Twilio retries is processed once, whichever replica receives it.
- ``sms_outbound``: every outgoing text part in conversation order, claimed with a
  lease by the sender, with Twilio's message sid, delivery status and error, and the
  escalation it belongs to (failures show there).
- ``sms_counters``: counts per conversation and window (messages a minute in, texts a
  day out) for the rate limit and the daily cap, shared by every replica.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

STATUS = sa.Enum(
    'pending', 'sent', 'failed', 'suppressed', name='sms_outbound_status', native_enum=False, length=32
)


def upgrade() -> None:
    op.create_table(
        'sms_contacts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('sender_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('opted_in_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('choices', sa.JSON(), nullable=True),
        sa.Column('choices_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_sms_contacts'),
        sa.UniqueConstraint('address', name='uq_sms_contacts_address'),
        sa.UniqueConstraint('sender_id', name='uq_sms_contacts_sender_id'),
    )
    op.create_table(
        'sms_inbound',
        sa.Column('message_sid', sa.String(length=64), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['contact_id'], ['sms_contacts.id'], name='fk_sms_inbound_contact_id_sms_contacts', ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('message_sid', name='pk_sms_inbound'),
    )
    op.create_index('ix_sms_inbound_contact_id', 'sms_inbound', ['contact_id'])
    op.create_index('ix_sms_inbound_received_at', 'sms_inbound', ['received_at'])
    op.create_table(
        'sms_outbound',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('sender_id', sa.String(length=64), nullable=False),
        sa.Column('escalation_id', sa.String(length=36), nullable=True),
        sa.Column('staff_line_id', sa.Integer(), nullable=True),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('author', sa.String(length=64), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('template_sid', sa.String(length=64), nullable=True),
        sa.Column('status', STATUS, nullable=False),
        sa.Column('claim_token', sa.String(length=36), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('twilio_sid', sa.String(length=64), nullable=True),
        sa.Column('delivery_status', sa.String(length=16), nullable=True),
        sa.Column('error_code', sa.String(length=16), nullable=True),
        sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['contact_id'], ['sms_contacts.id'], name='fk_sms_outbound_contact_id_sms_contacts', ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(
            ['escalation_id'], ['escalations.id'], name='fk_sms_outbound_escalation_id_escalations',
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['staff_line_id'], ['staff_chat_lines.id'], name='fk_sms_outbound_staff_line_id_staff_chat_lines',
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name='pk_sms_outbound'),
        sa.UniqueConstraint('twilio_sid', name='uq_sms_outbound_twilio_sid'),
    )
    op.create_index('ix_sms_outbound_sender_id', 'sms_outbound', ['sender_id'])
    op.create_index('ix_sms_outbound_escalation_id', 'sms_outbound', ['escalation_id'])
    op.create_index('ix_sms_outbound_due', 'sms_outbound', ['status', 'next_attempt_at'])
    op.create_index('ix_sms_outbound_contact_order', 'sms_outbound', ['contact_id', 'status', 'id'])
    op.create_table(
        'sms_counters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('window', sa.String(length=16), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_sms_counters'),
        sa.UniqueConstraint('scope', 'key', 'window', name='uq_sms_counters_scope_key_window'),
    )
    op.create_index('ix_sms_counters_created_at', 'sms_counters', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_sms_counters_created_at', table_name='sms_counters')
    op.drop_table('sms_counters')
    for name in ('ix_sms_outbound_contact_order', 'ix_sms_outbound_due', 'ix_sms_outbound_escalation_id',
                 'ix_sms_outbound_sender_id'):
        op.drop_index(name, table_name='sms_outbound')
    op.drop_table('sms_outbound')
    op.drop_index('ix_sms_inbound_received_at', table_name='sms_inbound')
    op.drop_index('ix_sms_inbound_contact_id', table_name='sms_inbound')
    op.drop_table('sms_inbound')
    op.drop_table('sms_contacts')
