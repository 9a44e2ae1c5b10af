"""The conversation page's audit trail says why a case changed hands."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.dashboard.staff.cases import AuditEntry
from bot.dashboard.web.presenters import audit_sentence

AT = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


def entry(kind: str, detail: dict) -> AuditEntry:
    return AuditEntry(id=1, created_at=AT, kind=kind, actor="sam", detail=detail)


def test_a_case_taken_by_talking_to_the_patient_says_so():
    assigned = {"before": {"assignee_id": None, "assignee": None}, "after": {"assignee_id": 3, "assignee": "sam"},
                "by": "talking"}
    assert audit_sentence(entry("case_assigned", assigned)) == "Assigned to sam on starting to talk to the patient"
    moved = {"before": "new", "after": "in_progress", "by": "talking"}
    assert audit_sentence(entry("status_changed", moved)) == (
        "Status changed from New to In progress on starting to talk to the patient")


def test_a_manual_change_reads_as_before():
    assert audit_sentence(entry("status_changed", {"before": "new", "after": "in_progress"})) == (
        "Status changed from New to In progress")


def test_the_on_call_rounds_and_the_opening_read_as_sentences():
    first = {"round": 0, "contacts": [{"name": "Duty physio", "via": ["sms"]}]}
    assert audit_sentence(entry("on_call_alerted", first)) == "On-call alert, round 1: Duty physio by SMS"
    widened = {"round": 1, "contacts": [{"name": "Duty physio", "via": ["sms"]},
                                        {"name": "Clinic lead", "via": ["sms", "email"]}, {"name": "Locum", "via": []}]}
    assert audit_sentence(entry("on_call_alerted", widened)) == (
        "On-call alert, round 2: Duty physio by SMS, Clinic lead by SMS and email, "
        "Locum (no way to reach them configured)")
    assert audit_sentence(entry("case_opened", {})) == "Case opened by staff"


def test_an_on_call_contacts_text_back_reads_as_their_acknowledgement():
    acknowledged = AuditEntry(id=2, created_at=AT, kind="on_call_acknowledged", actor="Duty physio",
                              detail={"via": "sms"})
    assert audit_sentence(acknowledged) == (
        "On-call contact Duty physio acknowledged the alert by text; no more on-call alerts are sent")
