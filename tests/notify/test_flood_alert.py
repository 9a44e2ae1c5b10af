"""Staff are alerted when a client address passes its cap of urgent escalations (bot/core/escalation/flood.py)."""

from __future__ import annotations

from bot.core.escalation.flood import client_key
from bot.core.escalation.service import EscalationService, transports
from bot.core.store.models import Priority, Reason
from bot.core.store.repository import EscalationInput

KEY = client_key("203.0.113.9", "test-session-secret")


def red_flag(sender: str) -> EscalationInput:
    return EscalationInput(
        sender_id=sender, channel="rest", reason=Reason.emergency, priority=Priority.urgent,
        trigger={"reason": "emergency"}, transcript=[{"from": "patient", "text": "chest pain", "time": 1.0}],
        client_key=KEY,
    )


async def test_the_grouped_case_alerts_staff_once_by_every_transport_saying_possible_abuse(
    settings, sessions, spool, notifier, smtp, webhook
):
    service = EscalationService(sessions, spool, transports(settings), urgent_per_address_per_hour=1)
    notifier.escalations = service
    own = await service.escalate(red_flag("bot-0"))
    grouped = [await service.escalate(red_flag(f"bot-{n}")) for n in range(1, 4)]

    await notifier.run_once()

    assert {outcome.escalation_id for outcome in grouped} != {own.escalation_id}
    assert len({outcome.escalation_id for outcome in grouped}) == 1
    subjects = sorted(email["Subject"] for email in smtp.messages)
    assert len(subjects) == 2  # the first case, and one alert for the grouped case: not one per message
    [alert] = [email for email in smtp.messages if "possible abuse" in email["Subject"]]
    assert alert["Subject"].startswith("[URGENT] possible abuse escalation ")
    assert "passed its hourly cap" in alert.get_payload(decode=True).decode()
    hooks = {body["escalation_id"]: body for body in webhook.received}
    assert hooks[grouped[0].escalation_id]["possible_abuse"] is True
    assert "possible_abuse" not in hooks[own.escalation_id]
