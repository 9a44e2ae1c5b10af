"""The guard's turn handling (bot/assistant/channels/guard.py): a client that goes away mid-turn never
stops the processing (so the patient's message and what it triggered reach the tracker), and a
failed custom action is still noticed when the processing runs in its own task."""

from __future__ import annotations

import asyncio
import logging

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.assistant.channels.action_failures import ACTION_FAILURE
from bot.assistant.channels.guard import guard
from bot.assistant.channels.replies import failure_reply
from bot.core.clinic import load_clinic
from bot.core.settings import REPO_ROOT

CLINIC = load_clinic(REPO_ROOT / "clinic.yml")


class SlowRasa:
    """Rasa handling a message slowly (a hung action server): it finishes only when released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.finished = False

    async def __call__(self, message: UserMessage) -> None:
        self.started.set()
        await self.release.wait()
        await message.output_channel.send_response(message.sender_id, {"text": "Call 999 now."})
        self.finished = True


async def test_a_client_that_goes_away_does_not_stop_the_turn():
    rasa = SlowRasa()
    message = UserMessage("i cant breathe since the needling", CollectingOutputChannel(), "conv-9", input_channel="rest")
    handler = asyncio.ensure_future(guard(rasa, CLINIC, 2000)(message))
    await asyncio.wait_for(rasa.started.wait(), 2)

    handler.cancel()  # what Sanic does when the REST client disconnects
    with pytest.raises(asyncio.CancelledError):
        await handler
    rasa.release.set()
    for _ in range(50):
        if rasa.finished:
            break
        await asyncio.sleep(0.02)

    assert rasa.finished, "the turn was cancelled with the client: the message would never reach the tracker"


async def test_a_failed_action_is_still_noticed_inside_the_processing_task():
    async def rasa(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "Here is a question"})
        logging.getLogger("rasa.core.processor").error(f"{ACTION_FAILURE} 'action_x'.")

    output = CollectingOutputChannel()
    await guard(rasa, CLINIC, 2000)(UserMessage("hello", output, "conv-10", input_channel="rest"))

    assert [m["text"] for m in output.messages] == ["Here is a question", failure_reply(CLINIC)]
