"""Keep patient text out of every log line, whoever writes it.

Patient messages, names, phone numbers and emails pass through Rasa, rasa_sdk,
Sanic, SQLAlchemy and our own code, and any of them may put a value into a log
line when something fails (rasa_sdk echoes request bodies, SQL errors print
their parameters). Rather than audit every library call, one
:class:`PrivacyFilter` sits on every log handler of every process and rewrites
each record before it is written:

* values marked sensitive for the current asyncio context
  (:func:`mark_sensitive`: the channel guard marks the patient's message, the
  action server marks every text, slot and entity value of the tracker it got);
* anything that looks like an email address or a phone number;
* SQL parameter blocks (``[parameters: ...]``) and database ``DETAIL`` lines.

The record's message and exception text are rendered first and redacted as a
whole, so a value cannot slip through in ``args`` or in a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Iterable, Iterator, Optional

REDACTED = "[redacted]"

# Short values ("yes", "no", a button payload) are not identifying and would
# blank out ordinary words in every log line.
MIN_SENSITIVE_CHARS = 4
# Bounded so a long-lived connection task that marks message after message
# does not grow without end.
MAX_SENSITIVE_VALUES = 256

_sensitive: ContextVar[tuple[str, ...]] = ContextVar("sensitive_log_values", default=())

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, optionally led by "+" and split by spaces, dots,
# hyphens or brackets: phone numbers in any common notation. Not inside a word
# or a hyphenated id (UUIDs, hex digests).
PHONE = re.compile(r"(?<![\w+-])\+?\(?\d(?:[\s().-]{0,2}\d){6,}(?!\w)")
# Digit runs that are not phone numbers: decimals, IPv4 addresses, ISO dates,
# Rasa's model timestamps (20240501-120000).
NOT_A_PHONE = re.compile(r"\d+\.\d+|\d{1,3}(?:\.\d{1,3}){3}|\d{4}-\d{2}-\d{2}\b.*|\d{8}-\d{6}", re.DOTALL)
SQL_PARAMETERS = re.compile(r"\[parameters:.*?(?=\(Background on this error|\Z)", re.DOTALL)
SQL_DETAIL = re.compile(r"(DETAIL:|Key \().*?(?=\n|\Z)")
REDACTED_SQL_PARAMETERS = "[parameters: redacted]\n"


def _forms(value: str) -> Iterator[str]:
    """The ways a value appears in log text: as is, JSON-escaped and repr-escaped."""
    yield value
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield repr(value)[1:-1]


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a (possibly nested) JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item)


def mark_sensitive(*values: Any) -> None:
    """Redact these values (and every string inside them) from log lines of the current context.

    The mark lives in a context variable: it covers the rest of the current
    asyncio task and the tasks it starts, not other patients' requests.
    """
    fresh: list[str] = []
    for value in values:
        for text in _strings(value):
            text = text.strip()
            if len(text) >= MIN_SENSITIVE_CHARS:
                fresh.extend(form for form in _forms(text) if len(form) >= MIN_SENSITIVE_CHARS)
    if not fresh:
        return
    merged = tuple(dict.fromkeys((*_sensitive.get(), *fresh)))
    # Longest first, so a value that contains another is removed whole.
    _sensitive.set(tuple(sorted(merged[-MAX_SENSITIVE_VALUES:], key=len, reverse=True)))


def sensitive_values() -> tuple[str, ...]:
    """The values marked sensitive in the current context."""
    return _sensitive.get()


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with marked values, emails, phone numbers and SQL parameters replaced."""
    if not text:
        return text
    for value in (*sensitive_values(), *extra):
        if value in text:
            text = text.replace(value, REDACTED)
    text = SQL_PARAMETERS.sub(REDACTED_SQL_PARAMETERS, text)
    text = SQL_DETAIL.sub(lambda match: match.group(1) + " " + REDACTED, text)
    text = EMAIL.sub(REDACTED, text)
    return PHONE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    return match.group() if NOT_A_PHONE.fullmatch(match.group()) else REDACTED


class PrivacyFilter(logging.Filter):
    """A handler filter that redacts patient data from each record (it never drops one)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format string: keep its parts
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_filter = PrivacyFilter()


def _handlers() -> Iterator[logging.Handler]:
    yield from logging.getLogger().handlers
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            yield from logger.handlers
    if logging.lastResort is not None:
        yield logging.lastResort


def install() -> int:
    """Put the filter on every handler that exists now; returns how many were new.

    Libraries add handlers late (Sanic when an app is created, Rasa when the
    server starts), so the server entry points call this again once running.
    """
    added = 0
    for handler in _handlers():
        if _filter not in handler.filters:
            handler.addFilter(_filter)
            added += 1
    return added


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: Optional[TracebackType]) -> None:
    """Uncaught exceptions go through logging (and so the filter), not raw to stderr."""
    logging.getLogger("uncaught").critical("uncaught %s", kind.__name__, exc_info=(kind, error, trace))


def configure(level: str = "INFO") -> None:
    """Logging for one of our processes: a plain stderr format, the filter everywhere."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(level)
    sys.excepthook = _log_uncaught
    install()


def short_id(sender_id: Optional[str]) -> str:
    """A sender id shortened for logs (ids may be phone numbers on some channels)."""
    if not sender_id:
        return "?"
    return sender_id[:4] + "…" if len(sender_id) > 8 else sender_id
