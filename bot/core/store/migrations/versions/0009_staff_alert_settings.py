"""staff alert settings: each account chooses browser notifications and a sound (issue 22)

The dashboard tells whoever has it open of every new urgent case and every patient reply
in a case they hold, by a browser notification and a short sound. Both are per account
(a reception screen wants the sound, a clinician's laptop in a session may not), so they
live on ``staff_users``. Both default to on: an account that never chose is alerted.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('alert_notifications', sa.Boolean(), nullable=False, server_default=sa.text('true')))
        batch.add_column(sa.Column('alert_sound', sa.Boolean(), nullable=False, server_default=sa.text('true')))


def downgrade() -> None:
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('alert_sound')
        batch.drop_column('alert_notifications')
