"""CSV export of escalations for a date range: safe to open in a spreadsheet, audited.

Rows are the escalations created in ``[from, to)``, oldest first. Transcripts (the
patient's and the assistant's words, and the triggering message) are left out unless
asked for. Every export writes an audit event with who exported, the range, the row
count and whether transcripts were included, in the same transaction that read the rows.

Spreadsheets run cells that start with ``=``, ``+``, ``-``, ``@`` (and tab or carriage
return) as formulas; such cells are prefixed with a single quote (OWASP's advice on
CSV injection), so a patient who types ``=HYPERLINK(...)`` stays text.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, Iterable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from bot.core.store.models import Escalation
from bot.dashboard.staff.cases import Actor, InvalidInput, audit_export

#: Most rows one export may hold: narrow the range beyond it.
MAX_ROWS = 50_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = (
    "id", "created_at", "updated_at", "reason", "priority", "status", "channel", "occurrences",
    "assignee", "contact_name", "contact_method", "contact_detail", "consent_given", "consent_at",
    "outcome", "outcome_at", "attempts", "resolved_at", "trigger_intent", "trigger_confidence",
    "matched_terms",
)
TRANSCRIPT_COLUMNS = ("trigger_message", "transcript")


def safe_cell(value: Any) -> str:
    """The text of one cell, defused if a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(getattr(value, "value", value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def transcript_text(transcript: Any) -> str:
    """The snapshot transcript as lines ``patient: ...`` / ``assistant: ...``."""
    lines = []
    for turn in transcript or []:
        if isinstance(turn, dict) and isinstance(turn.get("text"), str):
            lines.append(f"{turn.get('from', 'unknown')}: {turn['text']}")
    return "\n".join(lines)


def row_of(record: Escalation, transcripts: bool) -> list[str]:
    """One CSV row of an escalation."""
    trigger = record.trigger if isinstance(record.trigger, dict) else {}
    terms = trigger.get("matched_terms") or []
    values: list[Any] = [
        record.id, record.created_at, record.updated_at, record.reason, record.priority, record.status,
        record.channel, record.occurrences, record.assignee, record.contact_name, record.contact_method,
        record.contact_detail, record.consent_given, record.consent_at, record.outcome, record.outcome_at,
        record.attempts, record.resolved_at, trigger.get("intent"), trigger.get("confidence"),
        "; ".join(str(term) for term in terms) if isinstance(terms, list) else "",
    ]
    if transcripts:
        values += [trigger.get("message"), transcript_text(record.transcript)]
    return [safe_cell(value) for value in values]


def to_csv(rows: Iterable[list[str]], transcripts: bool) -> str:
    """The CSV document (header first, CRLF line ends as RFC 4180 has them)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(COLUMNS + (TRANSCRIPT_COLUMNS if transcripts else ()))
    writer.writerows(rows)
    return out.getvalue()


async def export_csv(
    sessions: sessionmaker,
    actor: Actor,
    created_from: Optional[datetime],
    created_to: Optional[datetime],
    *,
    transcripts: bool = False,
) -> tuple[str, int]:
    """The CSV of escalations created in ``[created_from, created_to)``, and its row count; audited."""
    if created_from is None or created_to is None:
        raise InvalidInput("an export needs both 'from' and 'to'")
    where = (Escalation.created_at >= created_from, Escalation.created_at < created_to)
    async with sessions() as session:
        async with session.begin():
            count = (await session.execute(select(func.count()).select_from(Escalation).where(*where))).scalar_one()
            if count > MAX_ROWS:
                raise InvalidInput(f"the range holds {count} escalations; an export is limited to {MAX_ROWS}")
            query = select(Escalation).where(*where).order_by(Escalation.created_at, Escalation.id)
            records = (await session.execute(query)).scalars().all()
            rows = [row_of(record, transcripts) for record in records]
            await audit_export(
                session, actor, created_from=created_from, created_to=created_to, rows=len(rows),
                transcripts=transcripts,
            )
    return to_csv(rows, transcripts), len(rows)
