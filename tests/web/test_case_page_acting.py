"""The conversation view built for acting (issue 22): who, why, readable transcript, resolving a held chat.

The who block gathers every name, phone number and email the patient gave with consent (the
contact form's answers in the tracker, the case's own contact, the number a texting patient
writes from) with tel:/mailto: links, escaped; the trigger is said in words (a red flag's class,
never "a general question"); button taps read as the buttons' titles with the model's intents
behind a details toggle; a case whose chat staff hold is not resolved until it is handed back.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from markupsafe import escape

from bot.core.store import chat
from bot.core.store.models import Priority, Reason, SmsContact, Status
from bot.dashboard.staff.conversation import ContactAnswer, contact_answers_of
from bot.dashboard.web.case_who import gather, mailto_href, tel_href
from tests.web.test_pages import XSS, case_form, escalate, say, staff_settings, tracker_db  # noqa: F401 - fixtures


def slot(tracker_db: Path, sender: str, name: str, value: object, at: float) -> None:
    """A ``slot`` event as Rasa's SQL tracker store keeps it."""
    data = {"event": "slot", "timestamp": at, "name": name, "value": value}
    with sqlite3.connect(tracker_db) as db:
        db.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?,?,?,?)",
                   (sender, "slot", at, json.dumps(data)))


def form_run(tracker_db: Path, sender: str, name: str, method: str, detail: str, consent: object, at: float) -> None:
    for offset, (key, value) in enumerate((("contact_name", name), ("contact_method", method),
                                           ("contact_detail", detail), ("contact_consent", consent))):
        slot(tracker_db, sender, key, value, at + offset)
    for offset, key in enumerate(("contact_name", "contact_method", "contact_detail", "contact_consent")):
        slot(tracker_db, sender, key, None, at + 5 + offset)  # the form is reset after it is submitted


def top(page: str) -> str:
    """The part of the page above the conversation: the who block and the reply box."""
    return page[page.index('class="case-top"'):page.index('id="conversation"')]


# --- who ----------------------------------------------------------------------------------------


def test_only_answers_given_with_consent_count():
    slots = [("contact_name", "Ann"), ("contact_method", "phone"), ("contact_detail", "+447700900001"),
             ("contact_consent", None), ("contact_name", "Ann B"), ("contact_method", "email"),
             ("contact_detail", "ann@example.org"), ("contact_consent", True)]

    assert contact_answers_of(slots) == [ContactAnswer("Ann B", "email", "ann@example.org")]


def test_links_are_built_from_the_cleaned_value_only():
    assert tel_href("+44 20 7946 0958") == "tel:+442079460958"
    assert tel_href("javascript:alert(1)") == ""
    assert mailto_href("ann@example.org") == "mailto:ann@example.org"
    assert mailto_href('a"@x.org"><script>') == ""


def test_the_texting_number_is_one_of_the_phones_once():
    who = gather([ContactAnswer("Ann", "phone", "+447700900123")], case_name=None, case_method=None,
                 case_detail=None, case_consent=None, sms_address="+447700900123")

    assert [(p.text, p.href, p.note) for p in who.phones] == [("+447700900123", "tel:+447700900123",
                                                                "texts from this number")]


async def test_every_consented_name_phone_and_email_is_at_the_top_with_links(staff_client, staff_db, tracker_db):
    now = time.time() - 100
    form_run(tracker_db, "s-who", "Ann Patient", "phone", "+447700900001", True, now)
    form_run(tracker_db, "s-who", "Ann P", "email", "ann@example.org", True, now + 20)
    form_run(tracker_db, "s-who", "Not Consented", "phone", "+447700900999", None, now + 40)
    case_id = await escalate(staff_db, "s-who", name="Ann Patient")

    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()

    block = top(page)
    assert "Ann Patient" in block and "Ann P" in block
    assert 'href="tel:+447700900001"' in block and 'href="tel:+442079460958"' in block
    assert 'href="mailto:ann@example.org"' in block
    assert "Not Consented" not in block and "+447700900999" not in block


async def test_the_who_block_escapes_what_the_patient_typed(staff_client, staff_db, tracker_db):
    form_run(tracker_db, "s-xss", XSS, "email", 'x"><script>alert(1)</script>@example.org', True, time.time() - 50)
    case_id = await escalate(staff_db, "s-xss", name=XSS)

    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()

    block = top(page)
    assert XSS not in block and "<script>alert(1)" not in block
    assert str(escape(XSS)) in block
    assert 'href="mailto:x' not in block  # not a plain address: shown, never linked


async def test_a_texting_patient_s_number_is_shown_with_a_call_link(staff_client, staff_db):
    case_id = await escalate(staff_db, "sms-abc", name=None, channel="sms")
    async with staff_db() as session, session.begin():
        session.add(SmsContact(address="+447700900555", kind="sms", sender_id="sms-abc"))

    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()

    assert 'href="tel:+447700900555"' in top(page)
    assert "texts from this number" in top(page)


# --- why -----------------------------------------------------------------------------------------


async def test_a_red_flag_is_said_in_words_and_never_as_a_general_question(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-red", reason=Reason.emergency, priority=Priority.urgent,
                             message="my throat is closing up")
    async with staff_db() as session, session.begin():
        from bot.core.store.models import Escalation
        record = await session.get(Escalation, case_id)
        record.trigger = {**record.trigger, "red_flag_class": "anaphylaxis", "care": "999", "personal": False}

    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()

    assert ("Red flag: possible emergency (Severe allergic reaction (anaphylaxis)); "
            "the assistant told the patient to call 999 now") in top(page)
    assert "A general question" not in page


# --- the transcript --------------------------------------------------------------------------------


async def test_a_button_tap_reads_as_the_button_s_title_and_intents_sit_behind_details(staff_client, staff_db,
                                                                                      tracker_db):
    at = time.time() - 60
    data = {"event": "bot", "timestamp": at, "text": "Do you agree to be contacted?", "metadata": {},
            "data": {"buttons": [{"title": "Yes, I agree", "payload": "/affirm"},
                                 {"title": "No thanks", "payload": "/deny"}]}}
    with sqlite3.connect(tracker_db) as db:
        db.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?,?,?,?)",
                   ("s-tap", "bot", at, json.dumps(data)))
    say(tracker_db, "s-tap", "user", "/affirm", at + 5, intent="affirm")
    case_id = await escalate(staff_db, "s-tap")

    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()

    turns = page[page.index('id="turns"'):]
    tapped = re.search(r'<li class="turn patient[^"]*"[^>]*>(.*?)</li>', turns, re.S).group(1)
    assert '<p class="text">Yes, I agree</p>' in tapped
    text_part, details = tapped.split('<details class="nlu">')
    assert "affirm" not in text_part  # neither the payload nor the intent outside the toggle
    assert "<code>affirm</code>" in details and "91% confidence" in details and "<code>/affirm</code>" in details
    assert "<details class=\"nlu\" open" not in turns


# --- resolving a held chat ---------------------------------------------------------------------------


async def test_resolving_while_the_chat_is_held_is_refused_until_it_is_handed_back(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-held")
    assert (await case_form(staff_client, case_id, "status", status="in_progress")).status == 303
    async with staff_db() as session, session.begin():
        takeover = await chat.start_takeover(session, escalation_id=case_id, sender_id="s-held", user_id=None,
                                             username="sam", name="Sam Staff", now=datetime.now(timezone.utc))

    page = await (await staff_client.get(f"/staff/escalations/{case_id}")).text()
    assert 'data-held-by="you"' in page and "Hand back and resolve" in page

    refused = await case_form(staff_client, case_id, "status", status="resolved")
    assert refused.status == 409
    assert "You still have the chat: hand it back to the assistant first" in await refused.text()

    async with staff_db() as session, session.begin():
        from bot.core.store.models import ChatTakeover
        (await session.get(ChatTakeover, takeover.id)).ended_at = datetime.now(timezone.utc)
    done = await case_form(staff_client, case_id, "status", status="resolved")
    assert done.status == 303
    async with staff_db() as session:
        from bot.core.store.models import Escalation
        assert (await session.get(Escalation, case_id)).status == Status.resolved


async def test_the_json_api_refuses_to_resolve_a_held_chat_as_the_page_does(staff_client, staff_db):
    case_id = await escalate(staff_db, "s-held-api")
    assert (await case_form(staff_client, case_id, "status", status="in_progress")).status == 303
    async with staff_db() as session, session.begin():
        await chat.start_takeover(session, escalation_id=case_id, sender_id="s-held-api", user_id=None,
                                  username="kim", name="Kim Nurse", now=datetime.now(timezone.utc))
    refused = await staff_client.post(f"/staff/api/escalations/{case_id}/status", json={"status": "resolved"},
                                      headers={"X-CSRF-Token": staff_client.csrf})
    assert refused.status == 409
    assert "Kim Nurse still has the chat: hand it back" in (await refused.json())["message"]
    async with staff_db() as session:
        from bot.core.store.models import Escalation
        assert (await session.get(Escalation, case_id)).status != Status.resolved


# --- the queue's export -------------------------------------------------------------------------------


async def test_the_queue_offers_a_csv_export_for_a_date_range(staff_client):
    page = await (await staff_client.get("/staff/")).text()

    form = page[page.index('id="export-form"') - 200:page.index("Download CSV")]
    assert 'action="/staff/api/escalations/export.csv"' in form and 'method="get"' in form
    assert 'name="from" type="date" required' in form and 'name="to" type="date" required' in form


def test_a_payload_no_button_offered_is_said_in_words_and_typed_slashes_stay_text():
    from bot.dashboard.staff.conversation import Turn, readable

    turns = readable([Turn(1, "patient", None, text="/greet"), Turn(2, "patient", None, text="/nope"),
                      Turn(3, "patient", None, text="/ is that the right page?")])

    assert [(t.text, t.payload, t.tapped) for t in turns] == [
        ("Opened the chat", "/greet", False), ("Chose an option (not typed)", "/nope", False),
        ("/ is that the right page?", None, False)]
