"""The queue and the JSON API show unverified cases and the grouped "possible abuse" case apart (bot/core/escalation/flood.py)."""

from __future__ import annotations

import re

from bot.core.escalation.flood import client_key
from bot.core.escalation.service import EscalationService
from bot.core.escalation.spool import Spool
from bot.core.store.models import Priority, Reason
from bot.core.store.repository import EscalationInput

FLOODER = client_key("203.0.113.9", "test-session-secret")


def red_flag(sender: str, channel: str = "rest", **contact: str) -> EscalationInput:
    return EscalationInput(
        sender_id=sender, channel=channel, reason=Reason.emergency, priority=Priority.urgent,
        trigger={"reason": "emergency", "matched_terms": ["chest pain"]},
        transcript=[{"from": "patient", "text": "chest pain since the needling", "time": 1.0}],
        client_key=FLOODER, **contact,
    )


async def flood_cases(staff_db, tmp_path) -> dict[str, str]:
    """Two own cases and a grouped one from one address (cap 2), an SMS case, and one with a phone number."""
    service = EscalationService(staff_db, Spool(tmp_path / "spool"), (), urgent_per_address_per_hour=2)
    ids = {}
    for n in range(4):
        ids[f"bot-{n}"] = (await service.escalate(red_flag(f"bot-{n}"))).escalation_id
    ids["sms"] = (await service.escalate(red_flag("sms-1", channel="sms"))).escalation_id
    ids["phone"] = (await service.escalate(red_flag("called", contact_detail="+442079460958",
                                                    contact_method="phone", contact_name="Pat"))).escalation_id
    return ids


def row_of(page: str, case_id: str) -> str:
    found = re.search(rf'<tr id="row-{case_id}"[^>]*>(.*?)</tr>', page, re.S)
    assert found, case_id
    return found.group(1)


async def test_the_queue_flags_unverified_cases_and_the_possible_abuse_case(staff_client, staff_db, tmp_path):
    ids = await flood_cases(staff_db, tmp_path)
    page = await (await staff_client.get("/staff/")).text()

    assert 'data-flag="unverified"' in row_of(page, ids["bot-0"]) and "Unverified: no contact details" in page
    grouped = row_of(page, ids["bot-2"])
    assert ids["bot-2"] == ids["bot-3"]  # both past the cap: one grouped case
    assert 'data-flag="possible_abuse"' in grouped and "Possible abuse" in grouped and "raised 2 times" in grouped
    assert "data-flag" not in row_of(page, ids["sms"])  # staff can text the number back
    assert "data-flag" not in row_of(page, ids["phone"])


async def test_the_api_says_which_cases_are_unverified_or_possible_abuse(staff_client, staff_db, tmp_path):
    ids = await flood_cases(staff_db, tmp_path)
    reply = await staff_client.get("/staff/api/escalations")
    assert reply.status == 200
    cases = {case["id"]: case for case in (await reply.json())["items"]}

    assert (cases[ids["bot-0"]]["unverified"], cases[ids["bot-0"]]["possible_abuse"]) == (True, False)
    assert (cases[ids["bot-2"]]["unverified"], cases[ids["bot-2"]]["possible_abuse"]) == (True, True)
    assert (cases[ids["sms"]]["unverified"], cases[ids["phone"]]["unverified"]) == (False, False)
