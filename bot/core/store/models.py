"""SQLAlchemy models of the escalation store (SQLAlchemy 1.4, 2.0 style).

Tables: escalations, staff notes, an append-only audit log of safety events,
the notification outbox, and staff accounts. Timestamps are timezone-aware
UTC; statuses are Enums.

A conversation has at most one *open* escalation per reason (a partial unique
index, so several action-server processes cannot create two); once staff
resolve it, a later episode is a new row and the earlier record stays as it was.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import declarative_base, relationship

from bot.core import vocabulary

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and returns them aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Why a conversation was escalated and how soon staff should act: the decision table's
# vocabulary (data/safety/decision_table.yml, read by bot/core/vocabulary.py), stored by value.
Reason = vocabulary.Reason
Priority = vocabulary.Priority


class Status(str, enum.Enum):
    """Where staff are with an escalation."""

    new = "new"
    in_progress = "in_progress"
    resolved = "resolved"


class AuditKind(str, enum.Enum):
    """Safety events recorded in the append-only audit log."""

    escalation_created = "escalation_created"
    escalation_updated = "escalation_updated"
    red_flag_triggered = "red_flag_triggered"
    consent_given = "consent_given"
    consent_declined = "consent_declined"
    status_changed = "status_changed"
    note_added = "note_added"
    notification_sent = "notification_sent"
    notification_failed = "notification_failed"
    recovered_from_spool = "recovered_from_spool"
    unusual_volume = "unusual_volume"
    # Dashboard accounts (bot/dashboard/staff/accounts.py); the actor is the admin, or cli:<os user>.
    staff_user_created = "staff_user_created"
    staff_user_disabled = "staff_user_disabled"
    staff_user_enabled = "staff_user_enabled"
    staff_role_changed = "staff_role_changed"
    staff_password_reset = "staff_password_reset"
    staff_password_changed = "staff_password_changed"
    staff_account_locked = "staff_account_locked"
    api_token_issued = "api_token_issued"
    api_token_revoked = "api_token_revoked"
    # Staff in the web chat (bot/dashboard/staff/takeover.py); the actor is the staff username, never the text.
    chat_taken_over = "chat_taken_over"
    chat_message_sent = "chat_message_sent"
    chat_handed_back = "chat_handed_back"
    # Case work on the staff dashboard (bot/dashboard/staff/cases.py); the actor is the staff username.
    case_assigned = "case_assigned"
    outcome_recorded = "outcome_recorded"
    escalations_exported = "escalations_exported"
    # SMS and WhatsApp (bot/assistant/messaging/); detail never holds the number or the text.
    sms_opted_out = "sms_opted_out"
    sms_opted_in = "sms_opted_in"
    sms_delivery_failed = "sms_delivery_failed"
    sms_reply_refused = "sms_reply_refused"
    # Flood guard (bot/core/escalation/flood.py): one client address passed its cap of urgent escalations.
    urgent_cap_reached = "urgent_cap_reached"
    # A contact form (or the offer of one) left unanswered until a new session began (actions/session.py).
    contact_form_abandoned = "contact_form_abandoned"
    # On-call route (bot/core/escalation/on_call.py): a staff member first opened the case page (the actor),
    # and one alert round to the on-call contacts (detail: round, contact names and channels; no patient text).
    case_opened = "case_opened"
    on_call_alerted = "on_call_alerted"
    # An on-call contact texted back (bot/assistant/messaging/on_call_replies.py): the actor is their name from
    # clinic.yml; detail never holds their text. It stops the re-alerts as an opening does.
    on_call_acknowledged = "on_call_acknowledged"


class Outcome(str, enum.Enum):
    """How staff closed the loop with the patient (recorded on the dashboard)."""

    called_back = "called_back"
    booked = "booked"
    advised_against_dry_needling = "advised_against_dry_needling"
    referred_gp = "referred_gp"
    referred_emergency = "referred_emergency"
    no_answer = "no_answer"


#: Delivery order of the outbox: lower ranks are sent first (the table's urgency order).
PRIORITY_RANK = {Priority(name): rank for name, rank in vocabulary.vocabulary().priority_rank.items()}

#: The one episode per conversation and reason that is still open (see the module docstring).
OPEN_EPISODE = text("status <> 'resolved'")


class OutboxStatus(str, enum.Enum):
    """Delivery state of a staff notification."""

    pending = "pending"
    sent = "sent"
    dead = "dead"


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, length=32, validate_strings=True)


class Escalation(Base):
    """A conversation handed to clinic staff."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index(
            "uq_escalations_open_sender_reason", "sender_id", "reason", unique=True,
            sqlite_where=OPEN_EPISODE, postgresql_where=OPEN_EPISODE,
        ),
    )

    id = Column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    channel = Column(String(32), nullable=False)
    sender_id = Column(String(128), nullable=False, index=True)
    reason = Column(_enum(Reason, "escalation_reason"), nullable=False)
    trigger = Column(JSON, nullable=False, default=dict)
    priority = Column(_enum(Priority, "escalation_priority"), nullable=False, default=Priority.normal)
    status = Column(_enum(Status, "escalation_status"), nullable=False, default=Status.new, index=True)
    assignee = Column(String(128))
    contact_name = Column(String(200))
    contact_method = Column(String(16))
    contact_detail = Column(String(320))
    consent_given = Column(Boolean)
    consent_at = Column(UTCDateTime)
    transcript = Column(JSON, nullable=False, default=list)
    #: How many times the conversation triggered this escalation (repeated red flags update one row).
    occurrences = Column(Integer, nullable=False, default=1, server_default="1")
    # Case work (migration 0004): who holds the case (``assignee`` keeps their username), how it ended.
    assignee_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"), index=True)
    outcome = Column(_enum(Outcome, "escalation_outcome"))
    outcome_at = Column(UTCDateTime)
    #: Contact attempts so far ("no answer after N attempts").
    attempts = Column(Integer, nullable=False, default=0, server_default="0")
    resolved_at = Column(UTCDateTime)
    # Flood guard (migration 0007, bot/core/escalation/flood.py): the keyed hash of the client address the
    # message came from (never the address), and whether this is the grouped "possible abuse" case.
    client_key = Column(String(64), index=True)
    possible_abuse = Column(Boolean, nullable=False, default=False, server_default=text("false"))

    notes = relationship("StaffNote", back_populates="escalation", order_by="StaffNote.created_at")


class StaffNote(Base):
    """A note a staff member wrote on an escalation."""

    __tablename__ = "staff_notes"

    id = Column(Integer, primary_key=True)
    escalation_id = Column(String(36), ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    author = Column(String(128), nullable=False)
    body = Column(Text, nullable=False)

    escalation = relationship("Escalation", back_populates="notes")


class AuditEvent(Base):
    """One safety event. Rows are never updated or deleted (enforced by triggers)."""

    __tablename__ = "audit_events"

    id = Column(Integer, primary_key=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    kind = Column(_enum(AuditKind, "audit_kind"), nullable=False, index=True)
    escalation_id = Column(String(36), index=True)
    #: Indexed (migration 0008): entries with no escalation are found by conversation.
    sender_id = Column(String(128), index=True)
    actor = Column(String(128), nullable=False, default="assistant")
    detail = Column(JSON, nullable=False, default=dict)


class OutboxMessage(Base):
    """A staff notification waiting to be delivered (email or webhook)."""

    __tablename__ = "notification_outbox"

    id = Column(Integer, primary_key=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    escalation_id = Column(String(36), nullable=False, index=True)
    transport = Column(String(16), nullable=False)
    payload = Column(JSON, nullable=False)
    status = Column(_enum(OutboxStatus, "outbox_status"), nullable=False, default=OutboxStatus.pending, index=True)
    #: ``PRIORITY_RANK`` of the escalation when queued: urgent messages are claimed first.
    priority_rank = Column(Integer, nullable=False, default=PRIORITY_RANK[Priority.normal], server_default="2")
    #: Set when a notifier claims the row; a result is recorded only by the claim's holder.
    claim_token = Column(String(36))
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_error = Column(String(500))
    sent_at = Column(UTCDateTime)


class StaffRole(str, enum.Enum):
    """What a dashboard account may do: staff work on escalations; admins also manage accounts."""

    staff = "staff"
    admin = "admin"
    #: A reception display (issue 22): a trusted screen that shows the live queue without
    #: patient text and can do nothing else. It stays signed in (no idle sign-out).
    reception = "reception"


class StaffUser(Base):
    """A clinic staff account for the dashboard (bot/dashboard/staff/accounts.py)."""

    __tablename__ = "staff_users"

    id = Column(Integer, primary_key=True)
    #: Lower case; unique.
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(100), nullable=False, default="", server_default="")
    role = Column(_enum(StaffRole, "staff_role"), nullable=False, default=StaffRole.staff, server_default="staff")
    #: argon2id (argon2-cffi's PasswordHasher); rehashed at sign-in when the parameters change.
    password_hash = Column(String(255), nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    password_changed_at = Column(UTCDateTime, nullable=False, default=utcnow)
    #: Set after an admin reset: the next sign-in must choose a new password.
    must_change_password = Column(Boolean, nullable=False, default=False, server_default=text("false"))
    #: A disabled account cannot sign in, and its sessions and API tokens stop working.
    disabled_at = Column(UTCDateTime)
    #: Failed sign-ins since the last success; at the threshold the account is locked until ``locked_until``.
    failed_logins = Column(Integer, nullable=False, default=0, server_default="0")
    locked_until = Column(UTCDateTime)
    #: Dashboard alerts (migration 0009): a browser notification and a sound for new urgent cases
    #: and patient replies in cases the account holds (bot/dashboard/web/static/staff/alerts.js).
    alert_notifications = Column(Boolean, nullable=False, default=True, server_default=text("true"))
    alert_sound = Column(Boolean, nullable=False, default=True, server_default=text("true"))


class StaffSession(Base):
    """A signed-in dashboard session (bot/core/store/staff_sessions.py).

    The browser's cookie holds a random key; only its SHA-256 is stored. A session is
    live while ``ended_at`` is empty and ``idle_until`` (last activity plus the idle
    timeout, never past ``expires_at``) is in the future.
    """

    __tablename__ = "staff_sessions"

    id = Column(Integer, primary_key=True)
    key_hash = Column(String(64), nullable=False, unique=True)
    user_id = Column(Integer, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    data = Column(JSON, nullable=False, default=dict)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at = Column(UTCDateTime, nullable=False, default=utcnow)
    idle_until = Column(UTCDateTime, nullable=False, index=True)
    expires_at = Column(UTCDateTime, nullable=False)
    ended_at = Column(UTCDateTime)


class ApiToken(Base):
    """A named API token for ``Authorization: Bearer``; only its SHA-256 is stored (bot/dashboard/staff/tokens.py)."""

    __tablename__ = "api_tokens"

    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True)
    name = Column(String(100), nullable=False)
    token_hash = Column(String(64), nullable=False, unique=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_used_at = Column(UTCDateTime)
    revoked_at = Column(UTCDateTime)


class LoginFailure(Base):
    """A failed dashboard sign-in from one client address (keyed hash), for throttling across replicas."""

    __tablename__ = "staff_login_failures"

    id = Column(Integer, primary_key=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow, index=True)
    address_key = Column(String(64), nullable=False, index=True)


# Staff in the web chat (migration 0005, bot/dashboard/staff/takeover.py and bot/assistant/channels/staff_bridge.py).


class ChatLineKind(str, enum.Enum):
    """What a line staff put into a patient's web chat is: a joined notice, a message, a handed-back notice."""

    joined = "joined"
    message = "message"
    left = "left"


#: The one takeover per conversation that has not ended.
ACTIVE_TAKEOVER = text("ended_at IS NULL")


class ChatTakeover(Base):
    """A staff member holding a web-chat conversation while the assistant is paused."""

    __tablename__ = "chat_takeovers"
    __table_args__ = (
        Index(
            "uq_chat_takeovers_active_sender", "sender_id", unique=True,
            sqlite_where=ACTIVE_TAKEOVER, postgresql_where=ACTIVE_TAKEOVER,
        ),
    )

    id = Column(Integer, primary_key=True)
    escalation_id = Column(String(36), ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    sender_id = Column(String(128), nullable=False)
    staff_user_id = Column(Integer, ForeignKey("staff_users.id", ondelete="SET NULL"))
    staff_username = Column(String(64), nullable=False)
    #: The name the patient was shown (the account's display name then).
    staff_name = Column(String(100), nullable=False)
    started_at = Column(UTCDateTime, nullable=False, default=utcnow)
    ended_at = Column(UTCDateTime)
    ended_by = Column(String(64))


class StaffChatLine(Base):
    """A line staff put into a patient's web chat, kept until it reached the patient's open chat.

    Written by the web app before Rasa is asked to send it (durable first). Rasa's side sets
    ``logged_at`` once the line is in the conversation's tracker, and ``delivered_at`` when it
    was emitted to an open chat, either at once or when the patient's browser came back.
    ``failed_at``: Rasa could not be reached, so the line never entered the conversation.
    """

    __tablename__ = "staff_chat_lines"
    __table_args__ = (Index("ix_staff_chat_lines_pending", "sender_id", "delivered_at"),)

    id = Column(Integer, primary_key=True)
    escalation_id = Column(String(36), ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    takeover_id = Column(Integer, ForeignKey("chat_takeovers.id", ondelete="SET NULL"))
    sender_id = Column(String(128), nullable=False)
    kind = Column(_enum(ChatLineKind, "chat_line_kind"), nullable=False, default=ChatLineKind.message)
    author_username = Column(String(64), nullable=False)
    author_name = Column(String(100), nullable=False)
    body = Column(Text, nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    logged_at = Column(UTCDateTime)
    delivered_at = Column(UTCDateTime)
    failed_at = Column(UTCDateTime)


# SMS and WhatsApp through Twilio (migration 0006, bot/assistant/messaging/ and bot/assistant/channels/twilio_sms.py).


class SmsOutboundStatus(str, enum.Enum):
    """Where an outgoing text is: waiting (or being sent), accepted by Twilio, given up, or withheld."""

    pending = "pending"
    sent = "sent"
    failed = "failed"
    #: Never sent, by rule: the number opted out, WhatsApp's window closed, or the daily cap was reached.
    suppressed = "suppressed"


class SmsContact(Base):
    """A patient address (``+44...`` or ``whatsapp:+44...``) and its conversation with the assistant.

    The Rasa conversation id is a random ``sms-...`` id, so the number appears in no
    tracker, log line or URL. One row per address holds its opt-out, the time of the
    patient's last message (WhatsApp's 24-hour window) and the last numbered choices offered.
    """

    __tablename__ = "sms_contacts"

    id = Column(Integer, primary_key=True)
    address = Column(String(64), nullable=False, unique=True)
    kind = Column(String(16), nullable=False)
    sender_id = Column(String(64), nullable=False, unique=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_inbound_at = Column(UTCDateTime)
    #: Set by STOP (or Twilio reporting the number unsubscribed); nothing is sent while it is set.
    opted_out_at = Column(UTCDateTime)
    opted_in_at = Column(UTCDateTime)
    #: The numbered choices last offered ("Reply 1 for ..."), and when.
    choices = Column(JSON)
    choices_at = Column(UTCDateTime)


class SmsInbound(Base):
    """A Twilio ``MessageSid`` already taken in: Twilio retries a slow webhook, the text is read once."""

    __tablename__ = "sms_inbound"

    message_sid = Column(String(64), primary_key=True)
    contact_id = Column(Integer, ForeignKey("sms_contacts.id", ondelete="CASCADE"), nullable=False, index=True)
    received_at = Column(UTCDateTime, nullable=False, default=utcnow, index=True)


class SmsOutbound(Base):
    """One outgoing text part, in conversation order, with its delivery as Twilio reports it.

    Sent by :class:`bot.assistant.messaging.outbox.SmsSender` with claims and leases like the
    notification outbox; a conversation's parts go out strictly in ``id`` order.
    """

    __tablename__ = "sms_outbound"
    __table_args__ = (
        Index("ix_sms_outbound_due", "status", "next_attempt_at"),
        Index("ix_sms_outbound_contact_order", "contact_id", "status", "id"),
    )

    id = Column(Integer, primary_key=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    contact_id = Column(Integer, ForeignKey("sms_contacts.id", ondelete="CASCADE"), nullable=False)
    sender_id = Column(String(64), nullable=False, index=True)
    #: The conversation's open escalation when queued (or when delivery failed): failures show there.
    escalation_id = Column(String(36), ForeignKey("escalations.id", ondelete="SET NULL"), index=True)
    staff_line_id = Column(Integer, ForeignKey("staff_chat_lines.id", ondelete="SET NULL"))
    #: ``assistant``, ``staff`` or ``keyword`` (STOP/START/HELP answers).
    origin = Column(String(16), nullable=False, default="assistant")
    author = Column(String(64))
    body = Column(Text, nullable=False)
    #: An approved WhatsApp template (Twilio ``ContentSid``) sent instead of free text.
    template_sid = Column(String(64))
    status = Column(
        _enum(SmsOutboundStatus, "sms_outbound_status"), nullable=False, default=SmsOutboundStatus.pending
    )
    claim_token = Column(String(36))
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_error = Column(String(500))
    sent_at = Column(UTCDateTime)
    twilio_sid = Column(String(64), unique=True)
    #: Twilio's status from the send call and the status callbacks (queued, sent, delivered, failed, ...).
    delivery_status = Column(String(16))
    error_code = Column(String(16))
    status_at = Column(UTCDateTime)


class SmsCounter(Base):
    """A count per conversation and time window (messages a minute in, texts a day out), shared by replicas."""

    __tablename__ = "sms_counters"
    __table_args__ = (UniqueConstraint("scope", "key", "window", name="uq_sms_counters_scope_key_window"),)

    id = Column(Integer, primary_key=True)
    scope = Column(String(16), nullable=False)
    #: The conversation id, never the number.
    key = Column(String(64), nullable=False)
    window = Column(String(16), nullable=False)
    count = Column(Integer, nullable=False, default=0)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow, index=True)


class EscalationSource(Base):
    """One client address (keyed hash) that raised an urgent escalation without contact details.

    Its row is locked by an upsert before the address's urgent escalations of the last hour
    are counted, so several processes agree on the cap (bot/core/escalation/flood.py).
    """

    __tablename__ = "escalation_sources"

    client_key = Column(String(64), primary_key=True)
    first_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_at = Column(UTCDateTime, nullable=False, default=utcnow)
    #: Urgent escalations this address tried to create without contact details, ever (grouped ones included).
    attempts = Column(Integer, nullable=False, default=0)


# Staff alerts and replies (migration 0010, issue 22).


class PushSubscription(Base):
    """A browser's Web Push subscription for a staff account (bot/dashboard/notify/web_push.py).

    ``endpoint`` is the push service URL the browser gave; ``p256dh`` and ``auth`` are its
    keys for encrypting the payload. A subscription the push service answers 404/410 for is
    deleted; other failures are counted and the subscription kept.
    """

    __tablename__ = "push_subscriptions"

    id = Column(Integer, primary_key=True)
    user_id = Column(Integer, ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True)
    endpoint = Column(Text, nullable=False, unique=True)
    p256dh = Column(String(255), nullable=False)
    auth = Column(String(255), nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_success_at = Column(UTCDateTime)
    failures = Column(Integer, nullable=False, default=0, server_default="0")


class CannedReply(Base):
    """A reply staff insert by typing "/" in the reply box; admins edit them (bot/dashboard/staff/canned_replies.py)."""

    __tablename__ = "canned_replies"

    id = Column(Integer, primary_key=True)
    #: What is typed after "/" to pick it, lower case, unique ("999", "call-back").
    shortcut = Column(String(32), nullable=False, unique=True)
    title = Column(String(80), nullable=False)
    body = Column(Text, nullable=False)
    position = Column(Integer, nullable=False, default=0, server_default="0")
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow)
    updated_by = Column(String(64), nullable=False, default="", server_default="")
