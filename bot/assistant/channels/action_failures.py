"""Noticing, from Rasa's own log record, that a custom action failed during a patient's turn.

Rasa logs the failure (for instance when the action server is down) and carries on with the
next prediction, so a patient could get a follow-up question without the answer it follows.
:class:`ActionFailureWatch`, a filter on Rasa's processor logger, marks the :class:`Turn`
being watched; the channel guard (:mod:`bot.assistant.channels.guard`) then adds a true message with
the clinic's phone number to that turn. The watched turn lives in a context variable, so
only the task handling that message (and the tasks it starts) marks it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator, Optional

#: How Rasa's processor begins the log record of a failed custom action.
ACTION_FAILURE = "Encountered an exception while running action"
#: The logger Rasa writes that record to.
PROCESSOR_LOGGER = "rasa.core.processor"


@dataclass
class Turn:
    """What happened while Rasa handled one patient message."""

    action_failed: bool = False


_current_turn: ContextVar[Optional[Turn]] = ContextVar("current_turn", default=None)


class ActionFailureWatch(logging.Filter):
    """Notices Rasa's log record of a failed custom action and marks the turn being watched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg and str(record.msg).startswith(ACTION_FAILURE):
            turn = _current_turn.get()
            if turn is not None:
                turn.action_failed = True
        return True


_watch = ActionFailureWatch()


def install_watch() -> None:
    """Put the watch on Rasa's processor logger (once, however often it is called)."""
    processor_logger = logging.getLogger(PROCESSOR_LOGGER)
    if _watch not in processor_logger.filters:
        processor_logger.addFilter(_watch)


@contextmanager
def watching(turn: Turn) -> Iterator[Turn]:
    """Watch ``turn`` in this context: tasks started inside the block copy it and mark it."""
    token = _current_turn.set(turn)
    try:
        yield turn
    finally:
        _current_turn.reset(token)
