"""CSV export of escalations: the date range, no transcripts unless asked, spreadsheet-safe cells, audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core.store.models import AuditEvent, AuditKind
from bot.dashboard.staff.export import safe_cell, transcript_text
from tests.support.cases import T0, add_case

EXPORT = "/staff/api/escalations/export.csv"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def exports(staff_db) -> list[AuditEvent]:
    async with staff_db() as session:
        query = select(AuditEvent).where(AuditEvent.kind == AuditKind.escalations_exported).order_by(AuditEvent.id)
        return list((await session.execute(query)).scalars())


async def test_the_export_holds_the_ranges_escalations_without_transcripts(staff_client, staff_db):
    # The shipped clinic is in London (GMT in early March): 2026-03-02 is [00:00, 24:00) UTC.
    inside = await add_case(staff_db, minutes=0, contact_name="Ana", contact_detail="07700 900123",
                            patient="I'm pregnant, secret words", consent_at=T0)
    await add_case(staff_db, minutes=-10 * 60)  # 23:00 the day before
    await add_case(staff_db, minutes=15 * 60)  # 00:00 the next day

    reply = await staff_client.get(EXPORT, params={"from": "2026-03-02", "to": "2026-03-02"})

    assert reply.status == 200
    assert reply.content_type == "text/csv"
    assert reply.headers["Content-Disposition"] == 'attachment; filename="escalations-2026-03-02-to-2026-03-02.csv"'
    assert reply.headers["Cache-Control"] == "no-store"
    text = await reply.text()
    [row] = rows_of(text)
    assert row["id"] == inside and row["contact_name"] == "Ana" and row["contact_detail"] == "07700 900123"
    assert row["reason"] == "contraindication" and row["status"] == "new" and row["consent_given"] == "yes"
    assert row["matched_terms"] == "pregnancy:pregnant" and row["trigger_intent"] == "ask_contraindication"
    assert "transcript" not in row and "trigger_message" not in row
    assert "secret words" not in text


async def test_transcripts_only_when_asked_for(staff_client, staff_db):
    await add_case(staff_db, patient="I'm pregnant", assistant="A physio will call you.")

    reply = await staff_client.get(EXPORT, params={"from": "2026-03-02", "to": "2026-03-02", "transcripts": "1"})

    [row] = rows_of(await reply.text())
    assert row["trigger_message"] == "I'm pregnant"
    assert row["transcript"] == "patient: I'm pregnant\nassistant: A physio will call you."


async def test_every_export_is_audited_with_who_range_rows_and_transcripts(staff_client, staff_db):
    await add_case(staff_db)
    await add_case(staff_db, minutes=1)

    await staff_client.get(EXPORT, params={"from": "2026-03-02", "to": "2026-03-02"})
    await staff_client.get(EXPORT, params={"from": "2026-03-03", "to": "2026-03-04", "transcripts": "1"})

    first, second = await exports(staff_db)
    assert first.actor == "sam" and first.escalation_id is None
    assert first.detail == {"from": "2026-03-02T00:00:00+00:00", "to": "2026-03-03T00:00:00+00:00", "rows": 2,
                            "transcripts": False}
    assert second.detail["rows"] == 0 and second.detail["transcripts"] is True


@pytest.mark.parametrize("dangerous", ["=HYPERLINK(\"http://evil.example\",\"click\")", "+44 20 7946 0958",
                                       "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"])
async def test_cells_a_spreadsheet_would_run_start_with_a_quote(staff_client, staff_db, dangerous):
    await add_case(staff_db, contact_name=dangerous, patient=dangerous)

    reply = await staff_client.get(EXPORT, params={"from": "2026-03-02", "to": "2026-03-02", "transcripts": "1"})

    [row] = rows_of(await reply.text())
    assert row["contact_name"] == "'" + dangerous
    assert row["trigger_message"] == "'" + dangerous


@pytest.mark.parametrize("params, message", [
    ({}, "both 'from' and 'to'"),
    ({"from": "2026-03-02"}, "both 'from' and 'to'"),
    ({"from": "2026-03-05", "to": "2026-03-01"}, "'from' must be before 'to'"),
    ({"from": "March", "to": "2026-03-01"}, "'from' must be a date"),
    ({"from": "2026-03-01", "to": "2026-03-02", "transcripts": "yes"}, "'transcripts' must be 0 or 1"),
    ({"from": "2026-03-01", "to": "2026-03-02", "search": "ana"}, "only 'from', 'to' and 'transcripts'"),
])
async def test_bad_export_requests_get_400_and_are_not_audited(staff_client, staff_db, params, message):
    reply = await staff_client.get(EXPORT, params=params)

    assert reply.status == 400
    assert message in (await reply.json())["message"]
    assert await exports(staff_db) == []


async def test_date_times_may_bound_the_range_exactly(staff_client, staff_db):
    early = await add_case(staff_db, minutes=0)
    await add_case(staff_db, minutes=30)

    reply = await staff_client.get(EXPORT, params={
        "from": T0.isoformat(), "to": (T0 + timedelta(minutes=30)).isoformat(),
    })

    assert [row["id"] for row in rows_of(await reply.text())] == [early]


async def test_anonymous_visitors_cannot_export(anon_client, staff_db):
    await add_case(staff_db)

    reply = await anon_client.get(EXPORT, params={"from": "2026-03-02", "to": "2026-03-02"})

    assert reply.status == 401
    assert await exports(staff_db) == []


def test_safe_cell_leaves_ordinary_values_alone():
    assert safe_cell(None) == "" and safe_cell(True) == "yes" and safe_cell(3) == "3"
    assert safe_cell("Ana") == "Ana" and safe_cell("07700 900123") == "07700 900123"
    assert safe_cell(T0) == "2026-03-02T09:00:00+00:00"
    assert safe_cell("=1+1") == "'=1+1"


def test_transcript_text_skips_turns_without_text():
    assert transcript_text([{"from": "patient", "text": "hi"}, {"from": "assistant"}, "junk"]) == "patient: hi"
