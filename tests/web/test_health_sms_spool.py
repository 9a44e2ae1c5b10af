"""/healthz reports the texts the SMS channel spooled, and degrades when one waits past the alert time."""

from __future__ import annotations

from datetime import timedelta

from bot.core.escalation.spool import Spool
from bot.core.messaging.inbound_spool import InboundSpool, SpooledText
from bot.core.store.db import create_engine, session_factory
from bot.core.store.models import utcnow
from bot.dashboard.web.health import HealthSources, health_report


def spooled(minutes_ago: float) -> SpooledText:
    at = (utcnow() - timedelta(minutes=minutes_ago)).isoformat()
    return SpooledText("+447700900123", "SM" + "0" * 32, "hello", 0, at)


async def test_spooled_texts_are_counted_and_one_waiting_too_long_degrades(db_url, tmp_path):
    engine = create_engine(db_url)
    try:
        spool = Spool(tmp_path / "spool")
        sources = HealthSources(session_factory(engine), spool, ("webhook",), timedelta(seconds=300))
        report = await health_report(sources)
        assert report["sms_spool"] == {"backlog": 0, "oldest_seconds": None} and report["status"] == "ok"

        texts = InboundSpool(spool.directory)
        texts.append(spooled(minutes_ago=1))
        report = await health_report(sources)
        assert report["sms_spool"]["backlog"] == 1 and report["status"] == "ok"  # the Rasa server replays it soon

        texts.append(spooled(minutes_ago=0))
        (spool.directory / "sms_inbound.jsonl").write_text("", encoding="utf-8")
        texts.append(spooled(minutes_ago=10))
        report = await health_report(sources)
        assert "sms_spool_not_draining" in report["problems"] and report["sms_spool"]["oldest_seconds"] >= 600
        assert "+44" not in str(report) and "hello" not in str(report)
    finally:
        await engine.dispose()
