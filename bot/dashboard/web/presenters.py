"""Plain words and readable times for the staff pages (templates stay free of logic).

Staff read the queue between patients: reasons, statuses and audit events are shown as
short sentences rather than codes, times in the clinic's own time zone, waits as
"1 h 05 min". Nothing here touches patient text; templates escape whatever they show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional
from zoneinfo import ZoneInfo

from bot.core.channel_names import Channel
from bot.core.vocabulary import vocabulary
from bot.dashboard.staff.case_views import AuditEntry, CaseSummary
from bot.dashboard.staff.waiting import describe

#: Reasons and priorities as staff read them: the decision table's labels (bot/core/vocabulary.py).
REASONS = vocabulary().labels
PRIORITIES = vocabulary().priority_labels
STATUSES = {"new": "New", "in_progress": "In progress", "resolved": "Resolved"}
#: What the button that moves a case to each status says.
STATUS_ACTIONS = {"new": "Put back to New", "in_progress": "Start working on it", "resolved": "Mark as resolved"}
REOPEN = "Reopen"
OUTCOMES = {
    "called_back": "Called back",
    "booked": "Booked an appointment",
    "advised_against_dry_needling": "Advised against dry needling",
    "referred_gp": "Referred to their GP",
    "referred_emergency": "Referred to emergency care",
    "no_answer": "No answer",
}
CHANNELS = {Channel.socketio.value: "Website chat", Channel.rest.value: "REST API", Channel.sms.value: "SMS",
            Channel.whatsapp.value: "WhatsApp", Channel.unknown.value: "Unknown channel"}
CONTACT_METHODS = {"phone": "Phone", "email": "Email", "chat": "Reply in the web chat"}
TRANSPORTS = {"email": "email", "webhook": "webhook", "web_push": "browser push"}
#: Flags of cases the flood guard marks (bot/core/escalation/flood.py), as the queue shows them.
UNVERIFIED = "Unverified: no contact details"
POSSIBLE_ABUSE = "Possible abuse: urgent messages from one address past its hourly cap, grouped"
#: A patient message this long after the escalation counts as "wrote again" in the queue.
WROTE_AGAIN_AFTER = timedelta(seconds=5)


def channel_label(channel: Optional[str]) -> str:
    """``socketio`` -> "Website chat"; unknown channel names as they are."""
    return CHANNELS.get(channel or Channel.unknown.value, channel or CHANNELS[Channel.unknown.value])


def label(table: dict[str, str], value: Any) -> str:
    """The plain-words label of an enum value (or the value itself)."""
    raw = getattr(value, "value", value)
    return table.get(raw, str(raw).replace("_", " ").capitalize()) if raw is not None else ""


def local(moment: datetime, tz: ZoneInfo) -> datetime:
    """``moment`` in the clinic's time zone."""
    return moment.astimezone(tz)


def clock_time(moment: Optional[datetime], tz: ZoneInfo, now: datetime) -> str:
    """"14:05" today, "Yesterday 14:05", "Tue 3 Dec 14:05" this year, else "3 Dec 2025 14:05"."""
    if moment is None:
        return ""
    when, today = local(moment, tz), local(now, tz).date()
    if when.date() == today:
        return f"{when:%H:%M}"
    if when.date() == today - timedelta(days=1):
        return f"Yesterday {when:%H:%M}"
    if when.year == today.year:
        return f"{when:%a} {when.day} {when:%b %H:%M}"
    return f"{when.day} {when:%b %Y %H:%M}"


def full_time(moment: Optional[datetime], tz: ZoneInfo) -> str:
    """"Tuesday 3 December 2026, 14:05" (for ``title`` attributes and the audit trail)."""
    if moment is None:
        return ""
    when = local(moment, tz)
    return f"{when:%A} {when.day} {when:%B %Y, %H:%M}"


def ago(moment: Optional[datetime], now: datetime) -> str:
    """"just now", "5 min ago", "2 h 10 min ago", "3 days ago"."""
    if moment is None:
        return ""
    seconds = max(0, int((now - moment).total_seconds()))
    minutes = seconds // 60
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min ago" if minutes else f"{hours} h ago"
    days = hours // 24
    return "1 day ago" if days == 1 else f"{days} days ago"


@dataclass(frozen=True)
class WaitView:
    """The wait column: how long, against what was promised, and whether it is overdue."""

    waited: str
    promised: str
    overdue: bool
    ended: bool


def wait_view(summary: CaseSummary, tz: ZoneInfo, now: datetime) -> Optional[WaitView]:
    """The patient's wait in words, or ``None`` when the case carries none."""
    wait = summary.wait
    if wait is None:
        return None
    if wait.promised_by is not None:
        promised = f"promised by {clock_time(wait.promised_by, tz, now)}"
    else:
        promised = "no contact promised"
    return WaitView(waited=describe(wait), promised=promised, overdue=wait.overdue, ended=wait.ended_at is not None)


@dataclass(frozen=True)
class RowView:
    """One queue row, ready to show."""

    summary: CaseSummary
    name: str
    has_name: bool
    reason: str
    priority: str
    status: str
    channel: str
    created: str
    created_full: str
    age: str
    wait: Optional[WaitView]
    assignee: str
    outcome: str
    last_message: str
    last_message_full: str

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def urgent(self) -> bool:
        return self.summary.red_flag

    @property
    def resolved(self) -> bool:
        return not self.summary.open

    @property
    def flag(self) -> str:
        """"Possible abuse" for a grouped case, "Unverified" when staff cannot reach the patient, else ""."""
        if self.summary.possible_abuse:
            return POSSIBLE_ABUSE
        return UNVERIFIED if self.summary.unverified else ""


def row_view(summary: CaseSummary, tz: ZoneInfo, now: datetime, last_message: Optional[datetime] = None) -> RowView:
    """Everything one queue row shows (the contact name stays patient data: escaped by the template)."""
    name = (summary.contact_name or "").strip()
    if last_message is not None and last_message <= summary.created_at + WROTE_AGAIN_AFTER:
        last_message = None  # the message that raised the escalation, not a later one
    return RowView(
        summary=summary,
        name=name or "No name given",
        has_name=bool(name),
        reason=label(REASONS, summary.reason),
        priority=label(PRIORITIES, summary.priority),
        status=label(STATUSES, summary.status),
        channel=channel_label(summary.channel),
        created=clock_time(summary.created_at, tz, now),
        created_full=full_time(summary.created_at, tz),
        age=ago(summary.created_at, now),
        wait=wait_view(summary, tz, now),
        assignee=summary.assignee_name or "",
        outcome=label(OUTCOMES, summary.outcome) if summary.outcome else "",
        last_message=ago(last_message, now) if last_message else "",
        last_message_full=full_time(last_message, tz) if last_message else "",
    )


def _who(detail: dict[str, Any], key: str) -> str:
    value = detail.get(key) or {}
    if isinstance(value, dict):
        return str(value.get("assignee") or "") or "nobody"
    return "nobody"


def audit_sentence(entry: AuditEntry) -> str:
    """What happened, in a sentence (the audit detail never holds patient text)."""
    detail = entry.detail or {}
    kind = entry.kind
    if kind == "escalation_created":
        return "Escalation created"
    if kind == "escalation_updated":
        return "The patient raised it again (same escalation updated)"
    if kind == "red_flag_triggered":
        return "Red flag triggered"
    if kind == "consent_given":
        method = label(CONTACT_METHODS, detail.get("contact_method")) if detail.get("contact_method") else ""
        return f"Patient agreed to be contacted ({method.lower()})" if method else "Patient agreed to be contacted"
    if kind == "consent_declined":
        return "Patient declined to be contacted"
    talking = " on starting to talk to the patient" if detail.get("by") == "talking" else ""
    if kind == "status_changed":
        return (f"Status changed from {label(STATUSES, detail.get('before'))} to "
                f"{label(STATUSES, detail.get('after'))}{talking}")
    if kind == "case_assigned":
        after = _who(detail, "after")
        return "Unassigned" if after == "nobody" else f"Assigned to {after}{talking}"
    if kind == "note_added":
        return "Private note added"
    if kind == "outcome_recorded":
        after = detail.get("after") or {}
        outcome = label(OUTCOMES, after.get("outcome")) if isinstance(after, dict) else ""
        attempts = after.get("attempts") if isinstance(after, dict) else None
        text = f"Outcome recorded: {outcome}" if outcome else "Outcome recorded"
        if isinstance(attempts, int) and attempts:
            text += f" ({attempts} contact attempt{'s' if attempts != 1 else ''})"
        return text
    if kind == "notification_sent":
        return f"Staff notified by {TRANSPORTS.get(str(detail.get('transport')), 'notification')}"
    if kind == "notification_failed":
        return f"Staff notification by {TRANSPORTS.get(str(detail.get('transport')), 'notification')} failed"
    if kind == "recovered_from_spool":
        return "Stored after the database was back (held safely meanwhile)"
    if kind == "contact_form_abandoned":
        return _abandoned_sentence(detail)
    if kind == "case_opened":
        return "Case opened by staff"
    if kind == "on_call_alerted":
        return _on_call_sentence(detail)
    if kind == "on_call_acknowledged":
        # The actor is the on-call contact's name from clinic.yml; their text is not kept in the audit.
        return f"On-call contact {entry.actor} acknowledged the alert by text; no more on-call alerts are sent"
    if kind.startswith("sms_"):
        return _sms_sentence(kind, detail)
    return kind.replace("_", " ").capitalize()


def _on_call_sentence(detail: dict) -> str:
    """Which on-call round reached whom and how (names are staff names from clinic.yml, never patient text)."""
    reached = []
    for contact in detail.get("contacts") or []:
        if not isinstance(contact, dict):
            continue
        via = " and ".join(str(channel).upper() if channel == "sms" else str(channel) for channel in contact.get("via") or [])
        name = str(contact.get("name") or "an on-call contact")
        reached.append(f"{name} by {via}" if via else f"{name} (no way to reach them configured)")
    number = detail.get("round")
    heading = f"On-call alert, round {number + 1}" if isinstance(number, int) else "On-call alert"
    return f"{heading}: {', '.join(reached)}" if reached else heading


#: What the contact form was asking for when the patient stopped answering (actions/session.py).
FORM_QUESTIONS = {
    "contact_name": "their name", "contact_method": "how to contact them",
    "contact_detail": "their phone number or email", "contact_consent": "their consent to be contacted",
}


def _abandoned_sentence(detail: dict[str, Any]) -> str:
    """A contact form or offer the patient left unanswered until the conversation started again."""
    if detail.get("stage") == "offer":
        return "The patient did not answer the offer to be contacted before the conversation started again"
    asked = FORM_QUESTIONS.get(str(detail.get("asked_for")))
    where = f" when asked for {asked}" if asked else ""
    return f"The patient left the contact form unfinished{where}: none of its answers were kept"


SMS_REASONS = {
    "opted_out": "the patient had texted STOP",
    "whatsapp_window_closed": "WhatsApp's 24-hour window had closed",
    "retries_exhausted": "Twilio could not be reached after several tries",
    "refused": "Twilio refused it",
    "undelivered": "the phone network could not deliver it",
    "failed": "Twilio could not send it",
}


def _sms_sentence(kind: str, detail: dict[str, Any]) -> str:
    """Audit sentences of the SMS/WhatsApp channel (bot/assistant/messaging/)."""
    if kind == "sms_opted_out":
        if detail.get("source") == "twilio":
            return "Twilio reports the patient's number unsubscribed: nothing more is sent to it"
        return "Patient texted STOP: nothing more is sent to their number"
    if kind == "sms_opted_in":
        return "Patient texted START: texts can be sent to them again"
    if kind == "sms_reply_refused":
        return f"Staff text not sent: {SMS_REASONS.get(str(detail.get('reason')), 'not allowed')}"
    if kind == "sms_delivery_failed":
        who = "A staff text" if detail.get("origin") == "staff" else "A text"
        reason = SMS_REASONS.get(str(detail.get("reason")), "it was not delivered")
        code = f" (Twilio error {detail['error_code']})" if detail.get("error_code") else ""
        return f"{who} to the patient did not arrive: {reason}{code}"
    return kind.replace("_", " ").capitalize()


def percent(value: Any) -> str:
    """0.934 -> "93%"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{round(float(value) * 100):d}%"
    return ""


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(item) for item in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_value_text(item)}" for key, item in value.items()) or "none"
    return "" if value is None else str(value)


def verdict_items(safety: Optional[dict[str, Any]]) -> list[tuple[str, str]]:
    """The safety screen's verdict on the triggering message as (label, text) pairs."""
    if not isinstance(safety, dict):
        return []
    return [(str(key).replace("_", " ").capitalize(), _value_text(value)) for key, value in safety.items()]
