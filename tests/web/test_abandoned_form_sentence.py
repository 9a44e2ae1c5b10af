"""The case history says in words that the patient left the contact form unfinished."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.dashboard.web.presenters import audit_sentence

AT = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


def entry(detail: dict):
    from bot.dashboard.web.presenters import AuditEntry

    return AuditEntry(id=1, created_at=AT, kind="contact_form_abandoned", actor="assistant", detail=detail)


def test_a_form_left_unfinished_names_the_question_it_stopped_at():
    sentence = audit_sentence(entry({"stage": "form", "reason": "adverse_event", "asked_for": "contact_detail"}))
    assert sentence == ("The patient left the contact form unfinished when asked for their phone number or email: "
                        "none of its answers were kept")


def test_an_unanswered_offer_reads_as_such():
    assert audit_sentence(entry({"stage": "offer", "reason": "contraindication"})) == (
        "The patient did not answer the offer to be contacted before the conversation started again")


def test_an_unknown_question_still_reads_as_a_sentence():
    assert audit_sentence(entry({"stage": "form", "asked_for": None})) == (
        "The patient left the contact form unfinished: none of its answers were kept")
